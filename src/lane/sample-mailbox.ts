import { HEADER_BYTES } from '../ring/layout.js'

/**
 * A lane's sample mailbox: how a worker hands the main thread the timings of the messages
 * the main thread sampled (tagged Tag.SAMPLED), without a postMessage and without the
 * completion ring. It is the tail of the lane's stats buffer (protocol.ts: SAMPLES_AT).
 *
 * Layout, in Int32 slots from the mailbox's first byte:
 *
 *   int 0     POSTED    samples fully written (a u32 count)      written by the worker only
 *   int 1     CLAIMED   samples whose entry was begun (u32)      written by the worker only
 *   byte 64   entries[slots], ENTRY_INTS Int32s each:
 *               [record end cursor u32 | start: f64 as 2 × i32 | service ms: f64 as 2 × i32]
 *
 * Invariant:
 *  - Only the lane's current worker writes the mailbox; the main thread only reads it.
 *    Sample n goes to entry n mod slots, round-robin, and overwrites sample n − slots: a
 *    reader that falls that far behind loses samples, it never holds the worker up.
 *  - The worker writes sample n as CLAIMED = n + 1, then the entry, then POSTED = n + 1.
 *    Every access is an Atomics one (sequentially consistent; a Float64 crosses as its two
 *    Int32 halves), so no read tears.
 *  - The reader takes sample n only once POSTED > n, and keeps what it read only if CLAIMED
 *    ≤ n + slots afterwards: otherwise sample n + slots had begun to overwrite the entry.
 *  - A worker posts a record's sample before it marks the record DONE: once RELEASE (or a
 *    dead worker's DONE, adopted) passes a record, its sample is posted, or never will be.
 *  - A replacement worker continues at POSTED: its first sample rewrites the entry a dead
 *    worker may have left half-written, which no reader took (it was never posted).
 *  - An entry names its record by end cursor. The reader matches samples to records by it,
 *    so a record handled twice (its worker died after posting, before DONE: the later sample
 *    wins) or never (its worker died handling it: no sample) cannot shift the pairing.
 *  - Times: start is the worker's `performance.timeOrigin + performance.now()`, wall-clock
 *    milliseconds comparable across threads (up to the few microseconds of error of each
 *    thread's time origin); service is a difference on the worker's own monotonic clock.
 */
const POSTED = 0
const CLAIMED = 1
/** The counters get a cache line of their own. */
const ENTRIES_AT = 16
const ENTRY_INTS = 5

/**
 * The main thread samples one record in SAMPLE_EVERY per lane (a power of two), fewer on a
 * busy lane (lane-samples.ts): never more densely than this.
 */
export const SAMPLE_EVERY = 16

/** Fewest entries, for the smallest rings. */
const MIN_SLOTS = 64
/** Most entries (1.25 MiB of mailbox): rings above 4 MiB get no more. */
const MAX_SLOTS = 1 << 16

/**
 * Entries for a lane whose request ring has `ringCapacity` bytes: a power of two above the
 * sampled records the lane can have unsettled at once (a record takes at least HEADER_BYTES),
 * so a main thread that is busy but keeps its lanes settled loses no sample.
 */
export function sampleSlots(ringCapacity: number): number {
  const sampled = ringCapacity / HEADER_BYTES / SAMPLE_EVERY
  let slots = MIN_SLOTS
  while (slots < sampled + MIN_SLOTS && slots < MAX_SLOTS) slots *= 2
  return slots
}

/** Bytes of the mailbox of a lane whose request ring has `ringCapacity` bytes. */
export function mailboxBytes(ringCapacity: number): number {
  return (ENTRIES_AT + sampleSlots(ringCapacity) * ENTRY_INTS) * 4
}

/** A Float64 as two Int32 halves and back, through a private (unshared) scratch buffer. */
const scratch = new Float64Array(1)
const halves = new Int32Array(scratch.buffer)

/** The mailbox's Int32 view and entry count, from the stats buffer it ends. */
function view(stats: SharedArrayBuffer, at: number): { ints: Int32Array; slots: number } {
  const ints = new Int32Array(stats, at)
  return { ints, slots: (ints.length - ENTRIES_AT) / ENTRY_INTS }
}

/** The worker's side: posts the sample of each SAMPLED record it finishes. */
export class SampleMailboxWriter {
  private readonly ints: Int32Array
  private readonly mask: number
  private posted: number

  constructor(stats: SharedArrayBuffer, at: number) {
    const { ints, slots } = view(stats, at)
    this.ints = ints
    this.mask = slots - 1
    this.posted = Atomics.load(ints, POSTED) >>> 0
  }

  /**
   * Posts the sample of the record ending at `end`: handled from `startedAt` (this thread's
   * performance.now()) for `serviceMs`. Call before marking the record DONE.
   */
  post(end: number, startedAt: number, serviceMs: number): void {
    const { ints } = this
    const next = (this.posted + 1) >>> 0
    const at = ENTRIES_AT + (this.posted & this.mask) * ENTRY_INTS
    Atomics.store(ints, CLAIMED, next | 0)
    Atomics.store(ints, at, end | 0)
    scratch[0] = performance.timeOrigin + startedAt
    Atomics.store(ints, at + 1, halves[0])
    Atomics.store(ints, at + 2, halves[1])
    scratch[0] = serviceMs
    Atomics.store(ints, at + 3, halves[0])
    Atomics.store(ints, at + 4, halves[1])
    Atomics.store(ints, POSTED, next | 0)
    this.posted = next
  }
}

/**
 * The main thread's side. `take(end)` finds the sample of the record ending at `end`; call
 * it for sampled records in ring order, once RELEASE has passed each.
 */
export class SampleMailboxReader {
  /** Of the last sample taken: when its handling began (wall-clock ms, see above). */
  startedAt = 0
  /** Of the last sample taken: how long its worker spent on the record, ms. */
  serviceMs = 0
  private readonly ints: Int32Array
  private readonly slots: number
  /** The next sample to look at (a u32 count, like POSTED). */
  private next: number

  constructor(stats: SharedArrayBuffer, at: number) {
    const { ints, slots } = view(stats, at)
    this.ints = ints
    this.slots = slots
    this.next = Atomics.load(ints, POSTED) >>> 0
  }

  /**
   * Whether the sample of the record ending at `end` was posted and is still intact; if so
   * `startedAt` and `serviceMs` hold it. Samples of earlier records not taken are passed
   * over; a later record's sample stays for its own take().
   */
  take(end: number): boolean {
    const { ints, slots } = this
    const posted = Atomics.load(ints, POSTED) >>> 0
    // Fallen more than a lap behind: the oldest posted samples are overwritten already.
    if ((posted - this.next) >>> 0 > slots) this.next = (posted - slots) >>> 0
    let found = false
    while (this.next !== posted) {
      const n = this.next
      const at = ENTRIES_AT + (n & (slots - 1)) * ENTRY_INTS
      const cursor = Atomics.load(ints, at)
      halves[0] = Atomics.load(ints, at + 1)
      halves[1] = Atomics.load(ints, at + 2)
      const startedAt = scratch[0]
      halves[0] = Atomics.load(ints, at + 3)
      halves[1] = Atomics.load(ints, at + 4)
      const serviceMs = scratch[0]
      const intact = (Atomics.load(ints, CLAIMED) - n) >>> 0 <= slots
      if (intact) {
        const order = (cursor - end) | 0
        // A later record's sample: ours was never posted (its worker died handling it).
        if (order > 0) break
        if (order === 0) {
          // Keep looking: a record handled again after a crash was posted again, later.
          found = true
          this.startedAt = startedAt
          this.serviceMs = serviceMs
        }
      }
      this.next = (n + 1) >>> 0
    }
    return found
  }
}
