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
 * The main thread's half of sampling, for one lane: picks one record in SAMPLE_EVERY to tag
 * SAMPLED, remembers when it was written, and once the worker has finished it, pairs it with
 * the timings the worker posted (sample-mailbox.ts) into latency, queue wait and service time.
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

  /** Counts a record about to be written: true for the one in SAMPLE_EVERY to sample. */
  due(): boolean {
    return ++this.clock % SAMPLE_EVERY === 0
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
