import { SAMPLES_AT } from '../lane/protocol.js'
import { SAMPLE_EVERY, SampleMailboxReader, sampleSlots } from '../lane/sample-mailbox.js'

/** Where a lane's samples go (the queue's measurements). Times in milliseconds. */
export interface SampleSink {
  /** A sampled message's push → done latency, its queue wait, and its service time. */
  sampled(lane: number, latencyMs: number, waitMs: number, serviceMs: number): void
  /** A sampled message whose timings never came (its worker died handling it). */
  sampleDropped(): void
}

/** This thread's clock as wall-clock milliseconds, the mailbox's cross-thread time. */
const ORIGIN = performance.timeOrigin
/**
 * A flooded lane is sampled about once per this many ms: a sample costs the main thread
 * ~0.3 µs when it is collected (the mailbox read across cores, three histogram records),
 * ~20 ns a message at one in 16 — a fifth of all a noop message may cost it. Once
 * DENSE_STREAK samples in a row were collected less than MIN_GAP_MS apart (a lane finishing
 * over ~160 k messages/s for 1024 messages), the interval doubles with each further dense
 * one, up to MAX_EVERY; each sample more than 4 × MIN_GAP_MS after the last halves it back.
 * Timed when collected, not written: a burst pushed into a slow lane is sampled as usual.
 */
const MIN_GAP_MS = 0.1
const DENSE_STREAK = 64
const MAX_EVERY = 1024

/**
 * The main thread's half of sampling, for one lane: picks one record in SAMPLE_EVERY (fewer
 * on a busy lane: MIN_GAP_MS) to tag SAMPLED, remembers when it was written, and once the
 * worker has finished it, pairs it with the timings the worker posted (sample-mailbox.ts) into
 * latency, queue wait and service time.
 *
 * A sample is collected when RELEASE (or a dead worker's DONE) passes its record, not when the
 * record settles: a record answered on the completion ring (a run() result, a dead letter)
 * settles before its worker has posted the sample, which happens just before DONE.
 *
 * Expected records are kept in ring order, as many as the mailbox has entries (more sampled
 * records than that cannot be unsettled in a lane; should it happen, the oldest is dropped).
 */
export class LaneSamples {
  private clock = 0
  /** Records per sample now: a power of two from SAMPLE_EVERY to MAX_EVERY. */
  private every = SAMPLE_EVERY
  /** Samples in a row collected less than MIN_GAP_MS apart, and when the last one was. */
  private dense = 0
  private lastCollectedAt = Number.NEGATIVE_INFINITY
  private readonly ends: Int32Array
  /** performance.now() when each expected record was written. */
  private readonly born: Float64Array
  private readonly mask: number
  private head = 0
  private count = 0
  private readonly mailbox: SampleMailboxReader

  constructor(
    private readonly lane: number,
    stats: SharedArrayBuffer,
    ringCapacity: number,
    private readonly sink: SampleSink,
  ) {
    const slots = sampleSlots(ringCapacity)
    this.ends = new Int32Array(slots)
    this.born = new Float64Array(slots)
    this.mask = slots - 1
    this.mailbox = new SampleMailboxReader(stats, SAMPLES_AT)
  }

  /** Sampled records written whose timings RELEASE has yet to bring. */
  get expecting(): number {
    return this.count
  }

  /** Records per sample now (SAMPLE_EVERY unless the lane is busy). */
  get interval(): number {
    return this.every
  }

  /** Counts a record about to be written: true for the one in `interval` to sample. */
  due(): boolean {
    return (++this.clock & (this.every - 1)) === 0
  }

  /**
   * due() for a stretch of records written in one go: how many records from now the next
   * sampled one is (1 … interval). Count the stretch with `skip()` afterwards; in between the
   * next ones are every `interval` records.
   */
  untilDue(): number {
    return this.every - (this.clock & (this.every - 1))
  }

  /** Counts `records` written since untilDue(). */
  skip(records: number): void {
    this.clock += records
  }

  /** The record ending at `end`, tagged SAMPLED, was just written. */
  expect(end: number): void {
    if (this.count === this.ends.length) {
      this.head = (this.head + 1) & this.mask
      this.count--
      this.sink.sampleDropped()
    }
    const slot = (this.head + this.count) & this.mask
    this.ends[slot] = end | 0
    this.born[slot] = performance.now()
    this.count++
  }

  /** The lane is gone: what is still expected was never handled, and is no sample. */
  forget(): void {
    this.count = 0
  }

  /** Adapts the interval to how closely samples are collected (MIN_GAP_MS). */
  private pace(now: number): void {
    const gap = now - this.lastCollectedAt
    this.lastCollectedAt = now
    if (gap < MIN_GAP_MS) {
      if (++this.dense >= DENSE_STREAK && this.every < MAX_EVERY) this.every *= 2
      return
    }
    this.dense = 0
    if (gap > 4 * MIN_GAP_MS && this.every > SAMPLE_EVERY) this.every /= 2
  }

  /** Every record ending at or before `cursor` is finished: measure the expected ones. */
  collect(cursor: number): void {
    const { ends, mailbox, sink } = this
    if (this.count === 0 || ((ends[this.head] - cursor) | 0) > 0) return
    const now = performance.now()
    do {
      const end = ends[this.head]
      const born = this.born[this.head]
      this.head = (this.head + 1) & this.mask
      this.count--
      this.pace(now)
      if (!mailbox.take(end)) {
        sink.sampleDropped()
        continue
      }
      const latencyMs = now - born
      const serviceMs = mailbox.serviceMs
      // Start and push times come from two threads' time origins, a few µs apart at worst:
      // clamp, so that wait + service ≤ latency holds for every sample.
      const waitMs = Math.max(
        0,
        Math.min(latencyMs - serviceMs, mailbox.startedAt - (ORIGIN + born)),
      )
      sink.sampled(this.lane, latencyMs, waitMs, serviceMs)
    } while (this.count > 0 && ((ends[this.head] - cursor) | 0) <= 0)
  }
}
