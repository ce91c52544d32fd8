import { deserialize } from 'node:v8'
import type { Codec } from '../codec/index.js'
import { ConveyorError, type ConveyorErrorCode } from '../errors.js'
import {
  COMPLETION_PREFIX,
  Completion,
  deathsOf,
  type SerializedError,
  STAT_SLOTS,
  Stat,
  Tag,
  withDeaths,
} from '../lane/protocol.js'
import type { LaneTask } from '../pool/lane-pool.js'
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
import { isRun, type Pending } from './pending.js'

/** What a lane reports to its queue as the worker finishes messages. */
export interface LaneEvents {
  completed(count: number): void
  latency(ms: number): void
  failed(error: Error, message: unknown, attempt: number): void
  deadLettered(error: Error, message: unknown, pending: Pending | undefined): void
  rejected(): void
  /** A user callback (ack, nack) threw: reported, never allowed to stall the lane. */
  callbackThrew(error: unknown): void
}

/** Records per publish at most, when the producer does not yield sooner. */
const PUBLISH_EVERY = 64

/** One message in one out of SAMPLE_EVERY gets its push → done latency measured. */
const SAMPLE_EVERY = 16

/**
 * The main-thread side of one lane: writes records, and turns the worker's progress
 * (RELEASE, and the completion ring) into acks, results, failures and dead letters.
 *
 * The ack FIFO holds one entry per record in the ring, in ring order: the record's end cursor,
 * what to settle (often nothing), and a push timestamp for sampled records. A lane is handled
 * in order, so when RELEASE passes an end cursor that record is done: no per-message message.
 * The ring holds at most capacity/8 records (8-byte minimum), so the FIFO has a fixed size.
 */
export class Lane {
  readonly requests: SharedArrayBuffer
  readonly completions: SharedArrayBuffer
  readonly stats: SharedArrayBuffer
  readonly writer: RingWriter
  readonly statSlots: Float64Array
  /** The worker currently serving this lane (changes when one dies). */
  generation = 0
  watching = false
  /** The lane task now serving this lane. */
  task: LaneTask | undefined
  /** Workers that died serving this lane. */
  restarts = 0
  /** Workers in a row that died before their handler's setup finished. */
  setupDeaths = 0
  /** Resolves when the lane's task ended for good (drained, aborted, or the pool is gone). */
  readonly finished: Promise<void>
  finish!: () => void
  private readonly completionReader: RingReader
  private readonly ring: Buffer
  private readonly out: Buffer
  private readonly ends: Int32Array
  private readonly pending: (Pending | undefined)[]
  private readonly born: Float64Array
  private head = 0
  private count = 0
  private unpublished = 0
  private unpublishedBytes = 0
  private readonly publishBytes: number
  private flushScheduled = false
  private runs = 0
  private sampleClock = 0

  constructor(
    readonly index: number,
    capacity: number,
    private readonly codec: Codec,
    private readonly events: LaneEvents,
  ) {
    this.finished = new Promise((resolve) => {
      this.finish = resolve
    })
    this.requests = createRingBuffer(capacity)
    // Twice as large: a completion may carry a whole request payload plus an error.
    this.completions = createRingBuffer(capacity * 2)
    this.stats = new SharedArrayBuffer(STAT_SLOTS * 8)
    this.statSlots = new Float64Array(this.stats)
    this.writer = new RingWriter(this.requests)
    this.publishBytes = capacity / 16
    this.completionReader = new RingReader(this.completions)
    this.ring = Buffer.from(this.requests)
    this.out = Buffer.from(this.completions)
    const slots = capacity / 8
    this.ends = new Int32Array(slots)
    this.pending = new Array(slots).fill(undefined)
    this.born = new Float64Array(slots)
  }

  /** Messages written and not yet settled. */
  get outstanding(): number {
    return this.count
  }

  /** run() calls waiting for a result here: their caller is latency-sensitive. */
  get awaitingResults(): number {
    return this.runs
  }

  /**
   * Writes one message and publishes it. False when the ring has no room now.
   * Throws MESSAGE_TOO_LARGE when it could never fit.
   */
  write(wire: string | Uint8Array, tag: number, pending: Pending | undefined): boolean {
    const { writer } = this
    // A producer that never yields starves the watcher; RELEASE still frees ring space, so
    // settle here before the FIFO would outgrow the records the ring can hold.
    if (this.count === this.ends.length) this.drain()
    let length: number
    if (typeof wire === 'string') {
      // Worst case 3 UTF-8 bytes per UTF-16 unit: reserve that, encode in place, commit the
      // actual length. Only a string too big for the worst case pays for counting bytes.
      let room = wire.length * 3
      if (room > writer.maxPayload) room = Buffer.byteLength(wire)
      const at = writer.reserve(room)
      if (at < 0) return this.full()
      length = this.ring.write(wire, at, room, 'utf8')
    } else {
      const at = writer.reserve(wire.byteLength)
      if (at < 0) return this.full()
      this.ring.set(wire, at)
      length = wire.byteLength
    }
    writer.commit(length, tag)
    this.track(writer.cursor, pending)
    this.unpublishedBytes += length + HEADER_BYTES
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
    if (this.unpublished > 0) this.publish()
  }

  private full(): false {
    if (this.unpublished > 0) this.publish()
    return false
  }

  private track(end: number, pending: Pending | undefined): void {
    const slot = (this.head + this.count) % this.ends.length
    this.ends[slot] = end | 0
    this.pending[slot] = pending
    this.born[slot] = ++this.sampleClock % SAMPLE_EVERY === 0 ? performance.now() : 0
    this.count++
    if (isRun(pending)) this.runs++
  }

  /** Settles every record that ends at or before `cursor` as completed. */
  private settleUpTo(cursor: number): void {
    let settled = 0
    const { ends, pending, born } = this
    while (this.count > 0 && ((ends[this.head] - cursor) | 0) <= 0) {
      const p = pending[this.head]
      const t = born[this.head]
      if (t !== 0) this.events.latency(performance.now() - t)
      if (p !== undefined) {
        pending[this.head] = undefined
        if (typeof p === 'function') this.ack(p)
        else if (p.kind === 'push') {
          if (p.ack) this.ack(p.ack)
        } else {
          // Cannot happen: a result-awaiting record always gets a completion first.
          this.runs--
          p.reject(new ConveyorError('WORKER_DIED', 'the message was finished without a result'))
        }
      }
      this.head = (this.head + 1) % ends.length
      this.count--
      settled++
    }
    if (settled > 0) this.events.completed(settled)
  }

  private ack(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.events.callbackThrew(err)
    }
  }

  /** Removes the head entry (the record whose completion just arrived). */
  private shift(): Pending | undefined {
    const p = this.pending[this.head]
    this.pending[this.head] = undefined
    this.head = (this.head + 1) % this.ends.length
    this.count--
    if (isRun(p)) this.runs--
    return p
  }

  /** Applies the worker's progress: completion records first, then RELEASE. */
  drain(): void {
    const released = this.writer.released
    const reader = this.completionReader
    const out = this.out
    let offset: number
    while ((offset = reader.next()) >= 0) {
      const kind = reader.tag
      const start = out.readUInt32LE(offset)
      const attempt = out.readUInt32LE(offset + 4)
      const errorBytes = out.readUInt32LE(offset + 8)
      const restAt = offset + COMPLETION_PREFIX + errorBytes
      const restLength = reader.length - COMPLETION_PREFIX - errorBytes
      // Records before this one are finished (one lane is handled in order).
      this.settleUpTo(start)
      if (kind === Completion.RESULT) {
        const p = this.shift()
        const value = deserialize(out.subarray(restAt, restAt + restLength))
        if (isRun(p)) p.resolve(value)
        this.events.completed(1)
        continue
      }
      const error = toError(JSON.parse(out.toString('utf8', offset + COMPLETION_PREFIX, restAt)))
      const message = this.decodeCopy(out, restAt, restLength)
      if (kind === Completion.FAILED) {
        this.events.failed(error, message, attempt)
        continue
      }
      // GAVE_UP: the last attempt failed too.
      // The handler did not fail when conveyor's own step did (decode, result encode).
      if (!isOwnError(error)) this.events.failed(error, message, attempt)
      const p = this.shift()
      if (isRun(p)) {
        p.reject(error)
        this.events.rejected()
      } else this.events.deadLettered(error, message, p)
    }
    reader.release()
    this.settleUpTo(released)
  }

  /**
   * After the lane's worker died: adopt its DONE cursor as RELEASE, then either mark the
   * suspect (the record it was handling) with one more death, or dead-letter it past the
   * limit. Returns true when the suspect was dead-lettered.
   */
  recoverFromCrash(attempts: number, cause: Error): boolean {
    this.publish()
    this.drain()
    const done = doneCursor(this.requests)
    adoptRelease(this.requests, done)
    this.settleUpTo(done)
    // A worker that died in setup, or between records, was not handling the next one.
    const blame = this.statSlots[Stat.HANDLING] === 1
    this.statSlots[Stat.HANDLING] = 0
    const suspect = recordAt(this.requests, done)
    if (!suspect || !blame) return false
    const deaths = deathsOf(suspect.tag) + 1
    if (deaths < attempts) {
      setTag(this.requests, suspect, withDeaths(suspect.tag, deaths))
      return false
    }
    const error = new ConveyorError(
      'WORKER_DIED',
      `the worker died ${deaths} times while handling this message (retry.attempts is ${attempts}): ${cause.message}`,
      { cause },
    )
    const message = this.decodeCopy(this.ring, suspect.offset, suspect.length)
    adoptRelease(this.requests, suspect.end)
    const p = this.shift()
    if (isRun(p)) {
      p.reject(error)
      this.events.rejected()
    } else this.events.deadLettered(error, message, p)
    return true
  }

  /** Stops the worker after the record it is handling (stop() past its timeout). */
  abort(): void {
    this.writer.abort()
  }

  /**
   * Once the worker is gone for good: settles what it finished and hands back every message
   * still in the ring, decoded, in lane order. Awaiting run() callers are rejected.
   */
  takeUnprocessed(): unknown[] {
    this.publish()
    this.drain()
    const done = doneCursor(this.requests)
    adoptRelease(this.requests, done)
    this.settleUpTo(done)
    const messages: unknown[] = []
    for (const record of recordsFrom(this.requests, done)) {
      messages.push(this.decodeCopy(this.ring, record.offset, record.length))
      const p = this.shift()
      if (isRun(p)) {
        p.reject(
          new ConveyorError('QUEUE_STOPPED', 'the queue stopped before this message was handled'),
        )
      }
    }
    adoptRelease(this.requests, this.writer.cursor)
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

/** Codes the worker side raises that are conveyor's own, not the handler's. */
const OWN_CODES: ReadonlySet<string> = new Set(['RESULT_ENCODE_FAILED', 'DECODE_FAILED'])

function isOwnError(error: Error & { code?: string }): boolean {
  return error.code !== undefined && OWN_CODES.has(error.code)
}

function toError(e: SerializedError): ConveyorError | (Error & { code?: string }) {
  if (e.code && OWN_CODES.has(e.code))
    return new ConveyorError(e.code as ConveyorErrorCode, e.message)
  const error: Error & { code?: string } = new Error(e.message)
  error.name = e.name
  if (e.stack) error.stack = e.stack
  if (e.code) error.code = e.code
  return error
}
