import { Stat, Tag } from '../src/lane/protocol.js'
import type { SampleMailboxWriter } from '../src/lane/sample-mailbox.js'
import { type RingReader, RingState } from '../src/ring/index.js'
import type { AbortWatch } from './abort-watch.js'
import { type Attempts, Handled } from './attempt.js'
import { waitForRecords, yieldToEventLoop } from './idle.js'

/** Records per RELEASE at most: each release may wake the main thread's watcher. */
const RELEASE_EVERY_MAX = 256
/** Longest stretch of handler calls before the event loop gets a turn (control calls). */
const YIELD_EVERY_MS = 5

/** How the loop ended: the ring was closed and emptied, or aborted by stop(). */
export type LoopEnd = 'drained' | 'aborted'

/**
 * The loop that serves one lane for as long as it is open: read a record, hand it to the
 * attempts, mark it DONE; publish RELEASE every `releaseEvery` records, at the end of a burst,
 * and at once after a record that wrote a completion (its settlement must follow it).
 *
 * HANDLING is 1 exactly while a record is being handled: if the worker dies then, the main
 * thread blames that record (the one at DONE); a death anywhere else blames nobody.
 *
 * A SAMPLED record's service time spans every attempt, backoff included: how long the
 * message held its lane. It is posted before DONE, which the mailbox's reader relies on.
 */
export async function runLaneLoop(
  reader: RingReader,
  attempts: Attempts,
  stats: Float64Array,
  watch: AbortWatch,
  samples: SampleMailboxWriter,
): Promise<LoopEnd> {
  // Release often enough that a small ring never waits for a whole batch: about one
  // release per 4 KiB of ring, at most one per RELEASE_EVERY_MAX records.
  const releaseEvery = Math.max(1, Math.min(RELEASE_EVERY_MAX, reader.capacity >> 12))
  // One object for every record (the loop awaits each record before reading the next); the
  // abort watch follows it.
  const { record } = watch
  stats[Stat.READY] = 1
  let lastYield = performance.now()
  // Clock reads cost ~30 ns: take one every `checkEvery` records, every record once
  // records are slow enough (≥ 50 µs) that a batch could outlast the yield interval.
  let checkEvery = 1
  for (;;) {
    let busySince = performance.now()
    let sinceRelease = 0
    let sinceCheck = 0
    let lastCheck = busySince
    let answeredRun = false
    // Once stop() aborted the ring (CLOSED), start no other record: the loop may get here
    // after a wake-up or mid-burst, and the rest must stay in the ring for stop() to hand back.
    // Asked before every record without a fence; with one at every release and clock check
    // (every record once records are slow), and after the burst.
    while (!reader.abortedUnfenced && (record.offset = reader.next()) >= 0) {
      record.length = reader.length
      record.tag = reader.tag
      record.start = reader.start
      stats[Stat.HANDLING] = 1
      const sampledAt = record.tag & Tag.SAMPLED ? performance.now() : -1
      let handled = attempts.handle(record)
      if (typeof handled !== 'number') handled = await handled
      if (handled === Handled.ABANDONED) {
        // stop() aborted the lane mid-record: leave it undone, and unreleased (release()
        // would pass it), so stop() hands it back. The main thread adopts DONE as RELEASE.
        stats[Stat.HANDLING] = 0
        return 'aborted'
      }
      if (sampledAt >= 0) samples.post(reader.cursor, sampledAt, performance.now() - sampledAt)
      reader.markDone(reader.cursor)
      stats[Stat.HANDLING] = 0
      if (handled === Handled.WITH_COMPLETION || ++sinceRelease >= releaseEvery) {
        reader.release()
        sinceRelease = 0
        answeredRun ||= (record.tag & Tag.WANTS_RESULT) !== 0
        if (reader.state === RingState.CLOSED) break
      }
      if (++sinceCheck >= checkEvery) {
        const now = performance.now()
        checkEvery = (now - lastCheck) / sinceCheck >= 0.05 ? 1 : 64
        sinceCheck = 0
        lastCheck = now
        if (aborted(reader)) break
        if (now - lastYield > YIELD_EVERY_MS) {
          // Let control calls (broadcast) in; publish progress first.
          reader.release()
          sinceRelease = 0
          stats[Stat.BUSY_MS] += now - busySince
          await yieldToEventLoop()
          lastYield = busySince = lastCheck = performance.now()
          if (reader.state === RingState.CLOSED) break
        }
      }
    }
    reader.release()
    stats[Stat.BUSY_MS] += performance.now() - busySince
    const state = reader.state
    if (state === RingState.CLOSED) return 'aborted'
    if (state === RingState.CLOSING && !reader.hasNext()) return 'drained'
    // A wake-up goes straight back to reading; a quiet park slice gives the event loop a turn.
    if (!waitForRecords(reader, answeredRun)) {
      await yieldToEventLoop()
      lastYield = performance.now()
    }
  }
}

/** stop() aborted the ring: a call, so that TypeScript does not narrow `reader.state`. */
function aborted(reader: RingReader): boolean {
  return reader.state === RingState.CLOSED
}
