import { deserialize } from 'node:v8'
import { type Codec, writeUtf8 } from '../codec/index.js'
import { ConveyorError } from '../errors.js'
import { Completion, readCompletion } from '../lane/completion.js'
import { deserializeError, isOwnError } from '../lane/error-wire.js'
import {
  ABORT_BELL,
  deathsOf,
  STAT_SLOTS,
  Stat,
  statsBytes,
  Tag,
  withDeaths,
} from '../lane/protocol.js'
import {
  adoptRelease,
  createRingBuffer,
  doneCursor,
  HEADER_BYTES,
  RingReader,
  RingWriter,
  recordAt,
  recordsFrom,
  setTag,
} from '../ring/index.js'
import { AckFifo } from './ack-fifo.js'
import { LaneSamples, type SampleSink } from './lane-samples.js'
import {
  type AbortTarget,
  type Pending,
  type Settlements,
  settleAborted,
  settleDone,
  settleGaveUp,
  settleResult,
  settleUnprocessed,
  type Tracked,
} from './pending.js'

/** What a lane reports to its queue as the worker finishes messages (and samples of them). */
export interface LaneOutcomes extends Settlements, SampleSink {
  completed(count: number): void
  failed(error: Error, message: unknown, attempt: number): void
}

/** Records per publish at most, when the producer does not yield sooner. */
const PUBLISH_EVERY = 64

/**
 * The main-thread side of one lane: its shared memory, the records it writes, and the
 * worker's progress (RELEASE and the completion ring) turned into acks, results, failures and
 * dead letters. It knows nothing of workers' lives: the supervisor starts and restarts them.
 *
 * Settlement order: completions are applied before RELEASE (the worker publishes them first),
 * so a record's outcome is known before its ack FIFO entry is settled as done.
 */
export class Lane implements AbortTarget {
  /** Request ring (main → worker). */
  readonly requests: SharedArrayBuffer
  /** Completion ring (worker → main), twice as large: a failure carries the whole payload. */
  readonly completions: SharedArrayBuffer
  readonly stats: SharedArrayBuffer
  readonly writer: RingWriter
  readonly statSlots: Float64Array
  /** A watcher loop is applying this lane's progress (owned by watcher.ts). */
  watching = false
  /**
   * Records this lane may hold unsettled: the ack FIFO's capacity (as many as fit the ring),
   * or less under a drain budget (drain-budget.ts). One number, so write() checks once.
   */
  private limit: number
  private readonly completionReader: RingReader
  /** The request ring as words (record tags) and the stats block's abort bell. */
  private readonly requestWords: Int32Array
  private readonly bell: Int32Array
  /** Views over the two rings' whole buffers, for encoding and decoding in place. */
  private readonly requestBytes: Buffer
  private readonly completionBytes: Buffer
  private readonly fifo: AckFifo
  private unpublished = 0
  private unpublishedBytes = 0
  private readonly publishBytes: number
  private flushScheduled = false
  private draining = false
  /** Payload offset of the record encode() reserved last. */
  private encodedAt = 0
  private readonly samples: LaneSamples

  constructor(
    readonly index: number,
    capacity: number,
    private readonly codec: Codec,
    private readonly outcomes: LaneOutcomes,
  ) {
    this.requests = createRingBuffer(capacity)
    this.completions = createRingBuffer(capacity * 2)
    this.stats = new SharedArrayBuffer(statsBytes(capacity))
    this.statSlots = new Float64Array(this.stats, 0, STAT_SLOTS)
    this.samples = new LaneSamples(index, this.stats, capacity, outcomes)
    this.writer = new RingWriter(this.requests)
    this.publishBytes = capacity / 16
    this.completionReader = new RingReader(this.completions)
    this.requestBytes = Buffer.from(this.requests)
    this.completionBytes = Buffer.from(this.completions)
    this.requestWords = new Int32Array(this.requests)
    this.bell = new Int32Array(this.stats)
    this.fifo = new AckFifo(capacity / HEADER_BYTES)
    this.limit = this.fifo.capacity
  }

  /** Messages this lane may hold (a drain budget); never more than the ack FIFO takes. */
  get maxOutstanding(): number {
    return this.limit
  }

  set maxOutstanding(n: number) {
    this.limit = Math.min(n, this.fifo.capacity)
  }

  /** Messages written and not yet settled. */
  get outstanding(): number {
    return this.fifo.size
  }

  /**
   * Whether a watcher has something to wait for: messages in flight, or sampled records
   * already settled (from the completion ring) whose timings come with the next RELEASE.
   */
  get needsWatching(): boolean {
    return this.fifo.size > 0 || this.samples.expecting > 0
  }

  /** Whether every record that ends at or before `cursor` is settled (its ack or nack ran). */
  settledThrough(cursor: number): boolean {
    return !this.fifo.headEndsBy(cursor)
  }

  /** run() calls waiting for a result here: their caller is latency-sensitive. */
  get awaitingResults(): number {
    return this.fifo.awaitingResults
  }

  /**
   * Writes one message (a codec's output) and publishes it. False when the lane has no room
   * now. Throws MESSAGE_TOO_LARGE when it could never fit.
   */
  write(wire: string | Uint8Array, tag: number, pending: Pending | undefined, index = 0): boolean {
    if (!this.hasEntryRoom()) return this.full()
    const bytes = this.append(wire, tag, pending, index)
    if (bytes < 0) return this.full()
    this.unpublishedBytes += bytes
    if (
      ++this.unpublished >= PUBLISH_EVERY ||
      this.unpublishedBytes >= this.publishBytes ||
      tag & Tag.WANTS_RESULT
    ) {
      this.publish()
    } else if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.flush)
    }
    return true
  }

  /**
   * Writes `wires[from]` up to `wires[to - 1]`, a pushMany()'s stretch for this lane, one record
   * each, as write() would with `index` = the message's place in `wires`; `pending` is the
   * batch's shared one (or none), never a tracked one. Returns how many went in: fewer than
   * asked when the lane filled up. The last records may be left unpublished: the caller
   * calls publishWritten() once its batch is through with this lane (one publish per batch,
   * not per stretch).
   */
  writeMany(
    wires: readonly (string | Uint8Array)[],
    from: number,
    to: number,
    pending: Pending | undefined,
  ): number {
    const { fifo, writer, samples, publishBytes } = this
    if (!this.hasEntryRoom()) return 0
    // Checked once: each message below takes one entry (the FIFO, or the drain budget).
    const last = Math.min(to, from + this.limit - fifo.size)
    let unpublished = this.unpublished
    let bytes = this.unpublishedBytes
    let untilSample = samples.untilDue()
    let i = from
    // append()'s steps inline, the FIFO's entries one store each and grouped once (endRun):
    // calling append() here measured ~8 ns a message slower (its tracked-pending and FIFO
    // checks), a tenth of a noop message's budget.
    try {
      for (; i < last; i++) {
        const length = this.encode(wires[i])
        if (length < 0) break
        const sampled = --untilSample === 0
        writer.commit(length, sampled ? Tag.SAMPLED : 0)
        fifo.pushEnd(writer.cursor)
        if (sampled) {
          samples.expect(writer.cursor)
          untilSample = samples.interval
        }
        bytes += length + HEADER_BYTES
        // Mid-stretch publishes let the worker start while the rest is encoded.
        if (++unpublished >= PUBLISH_EVERY || bytes >= publishBytes) {
          writer.publish()
          unpublished = 0
          bytes = 0
        }
      }
    } finally {
      // Even after a throw (none is expected): no entry may be left without its group.
      fifo.endRun(i - from, pending, from)
    }
    samples.skip(i - from)
    this.unpublished = unpublished
    this.unpublishedBytes = bytes
    return i - from
  }

  /** Publishes what writeMany() left unpublished, if anything. */
  publishWritten(): void {
    if (this.unpublished > 0) this.publish()
  }

  /**
   * Whether the ack FIFO (or the drain budget) takes another entry. The FIFO lags RELEASE
   * until progress is applied, and a producer that never yields starves the watcher: apply
   * it here before saying no. Still full: the ring is full of unreleased records, or the lane
   * holds what it can drain within the budget.
   */
  private hasEntryRoom(): boolean {
    if (this.fifo.size < this.limit) return true
    this.drain()
    return this.fifo.size < this.limit
  }

  /**
   * Encodes one message as the next record (unpublished) and remembers what it settles.
   * Returns the bytes it takes in the ring, or -1 when the ring has no room now.
   */
  private append(
    wire: string | Uint8Array,
    tag: number,
    pending: Pending | undefined,
    index: number,
  ): number {
    const { writer } = this
    const length = this.encode(wire)
    if (length < 0) return -1
    const sampled = this.samples.due()
    writer.commit(length, sampled ? tag | Tag.SAMPLED : tag)
    if (typeof pending === 'object' && pending.tracked) {
      pending.lane = this
      pending.tagIndex = (this.encodedAt >> 2) - 1
      pending.end = writer.cursor
    }
    this.fifo.push(writer.cursor, pending, index)
    if (sampled) this.samples.expect(writer.cursor)
    return length + HEADER_BYTES
  }

  /**
   * Reserves the next record and encodes `wire` into it (not committed): its payload's length,
   * or -1 when the ring has no room now. `encodedAt`: where the payload went.
   */
  private encode(wire: string | Uint8Array): number {
    const { writer } = this
    let at: number
    if (typeof wire === 'string') {
      // Worst case 3 UTF-8 bytes per UTF-16 unit: reserve that, encode in place, commit the
      // actual length. Only a string too big for the worst case pays for counting bytes.
      let room = wire.length * 3
      if (room > writer.maxPayload) room = Buffer.byteLength(wire)
      at = writer.reserve(room)
      if (at < 0) return -1
      this.encodedAt = at
      return writeUtf8(this.requestBytes, wire, at, room)
    }
    at = writer.reserve(wire.byteLength)
    if (at < 0) return -1
    this.encodedAt = at
    this.requestBytes.set(wire, at)
    return wire.byteLength
  }

  /** Makes every written record visible to the worker (and wakes it if it sleeps). */
  publish(): void {
    this.unpublished = 0
    this.unpublishedBytes = 0
    this.writer.publish()
  }

  /**
   * Records are published in batches: every PUBLISH_EVERY records, or when the producer
   * yields to the event loop. One publish (and at most one wake-up of a parked worker) per
   * batch instead of per message; a caller awaiting run() publishes at once.
   */
  private readonly flush = (): void => {
    this.flushScheduled = false
    this.publishWritten()
  }

  private full(): false {
    this.publishWritten()
    return false
  }

  /** Settles every record that ends at or before `cursor` as completed, a group at a time. */
  private settleUpTo(cursor: number): void {
    const { fifo, outcomes } = this
    this.samples.collect(cursor)
    let settled = 0
    let n: number
    while ((n = fifo.takeEnded(cursor)) > 0) {
      settled += n
      settleDone(fifo.takenPending, outcomes, fifo.takenIndex, n)
    }
    if (settled > 0) outcomes.completed(settled)
  }

  /**
   * The caller's signal fired for a record written here: flag it for the worker (skip it, or
   * abort `ctx.signal` while it runs). Only before RELEASE passes it: after that its memory
   * may already hold another record, and the message is finished anyway.
   */
  flagAborted(p: Tracked): void {
    if (((p.end - this.writer.released) | 0) <= 0) return
    Atomics.or(this.requestWords, p.tagIndex, Tag.ABORTED)
    this.ringAbortBell()
  }

  private ringAbortBell(): void {
    Atomics.add(this.bell, ABORT_BELL, 1)
    Atomics.notify(this.bell, ABORT_BELL)
  }

  /**
   * Applies the worker's progress: completion records first, then RELEASE. Not re-entrant: a
   * callback that gets here again (an ack whose push finds the lane full) returns at once, and
   * the drain under way goes on. A nested one would release completion records the outer one
   * still reads, and settle later records before the rest of the group being settled.
   */
  drain(): void {
    if (this.draining) return
    this.draining = true
    try {
      this.applyProgress()
    } finally {
      this.draining = false
    }
  }

  private applyProgress(): void {
    const released = this.writer.released
    const reader = this.completionReader
    const out = this.completionBytes
    let offset: number
    while ((offset = reader.next()) >= 0) {
      const kind = reader.tag
      const c = readCompletion(out, offset, reader.length)
      // Records before this one are finished (one lane is handled in order).
      this.settleUpTo(c.start)
      if (kind === Completion.RESULT) {
        const p = this.fifo.shift()
        settleResult(p, deserialize(out.subarray(c.restOffset, c.restOffset + c.restLength)))
        this.outcomes.completed(1)
        continue
      }
      const message = this.decodeCopy(out, c.restOffset, c.restLength)
      if (kind === Completion.ABORTED) {
        const index = this.fifo.headIndex
        settleAborted(this.fifo.shift(), message, this.outcomes, index)
        continue
      }
      const error = deserializeError(c.errorText)
      if (kind === Completion.FAILED) {
        this.outcomes.failed(error, message, c.attempt)
        continue
      }
      // GAVE_UP: the last attempt failed too. When conveyor's own step failed (decoding a
      // message, encoding a result), the handler did not: no 'failed' for it.
      if (!isOwnError(error)) this.outcomes.failed(error, message, c.attempt)
      this.giveUp(error, message)
    }
    reader.release()
    this.settleUpTo(released)
  }

  /** Settles the oldest record as given up: a run() rejects, a push is dead-lettered. */
  private giveUp(error: Error, message: unknown): void {
    const index = this.fifo.headIndex
    settleGaveUp(this.fifo.shift(), error, message, this.outcomes, index)
  }

  /**
   * After the lane's worker died: adopt its DONE cursor as RELEASE, then either mark the
   * suspect (the record it was handling) with one more death, or dead-letter it past the
   * limit. Call only once the worker is gone (see ring/recovery.ts).
   */
  recoverFromCrash(attempts: number, cause: Error): void {
    this.settleFinished()
    // A worker that died in setup, or between records, was not handling the next one.
    const blame = this.statSlots[Stat.HANDLING] === 1
    this.statSlots[Stat.HANDLING] = 0
    this.statSlots[Stat.READY] = 0
    const done = doneCursor(this.requests)
    const suspect = recordAt(this.requests, done)
    if (!suspect || !blame) return
    const deaths = deathsOf(suspect.tag) + 1
    if (deaths < attempts) {
      setTag(this.requests, suspect, withDeaths(suspect.tag, deaths))
      return
    }
    const error = new ConveyorError(
      'WORKER_DIED',
      `the worker died ${deaths} times while handling this message (retry.attempts is ${attempts}): ${cause.message}`,
      { cause },
    )
    const message = this.decodeCopy(this.requestBytes, suspect.offset, suspect.length)
    adoptRelease(this.requests, suspect.end)
    // Its sample, if sampled: only if a worker finished it just before dying, most often none.
    this.samples.collect(suspect.end)
    this.giveUp(error, message)
  }

  /** Applies what a dead worker published, and adopts its DONE cursor as RELEASE. */
  private settleFinished(): void {
    this.publish()
    this.drain()
    const done = doneCursor(this.requests)
    adoptRelease(this.requests, done)
    this.settleUpTo(done)
  }

  /**
   * Stops the worker after the record it is handling (stop() past its timeout); a handler
   * watching `ctx.signal` sees it abort.
   */
  abort(): void {
    this.writer.abort()
    this.ringAbortBell()
  }

  /**
   * Once the worker is gone for good: settles what it finished and hands back every message
   * still in the ring, decoded, in lane order. Awaiting run() callers are rejected.
   */
  takeUnprocessed(): unknown[] {
    this.settleFinished()
    const messages: unknown[] = []
    for (const record of recordsFrom(this.requests, doneCursor(this.requests))) {
      messages.push(this.decodeCopy(this.requestBytes, record.offset, record.length))
      settleUnprocessed(this.fifo.shift())
    }
    adoptRelease(this.requests, this.writer.cursor)
    this.samples.forget()
    return messages
  }

  /** Decodes from a private copy: the caller may keep the message after the ring moves on. */
  private decodeCopy(from: Buffer, offset: number, length: number): unknown {
    const copy = Buffer.from(from.subarray(offset, offset + length))
    try {
      return this.codec.fromWire(copy, 0, length)
    } catch {
      return copy
    }
  }
}
