import { serialize } from 'node:v8'
import type { MessagePort } from 'node:worker_threads'
import { type Codec, loadCodec } from '../src/codec/index.js'
import { exposeControl } from '../src/lane/control.js'
import {
  COMPLETION_PREFIX,
  Completion,
  type LaneExit,
  type LaneInit,
  type SerializedError,
  Stat,
  Tag,
} from '../src/lane/protocol.js'
import { RingReader, RingState, RingWriter } from '../src/ring/index.js'
import type { HandlerContext, HandlerDefinition } from '../src/worker.js'
import { HandlerInvalid, type LoadedHandler, loadHandler, teardownAll } from './handler-host.js'

/**
 * The Piscina task that serves one lane for as long as it is open: read a record, run the
 * handler, mark it done; publish RELEASE every `releaseEvery` records, at the end of a burst,
 * and at once after a record that produced a completion (a caller may be waiting on it).
 */
const RELEASE_EVERY_MAX = 256
/**
 * How long to poll WRITE before parking. A producer mid-burst, or a caller awaiting run()
 * results one after the other, usually publishes again within this; a futex wake-up costs more.
 */
const SPIN_MS = 0.03
/**
 * After answering a run() caller, poll longer: a caller awaiting results one after another
 * sends the next within tens of µs, and a parked worker's wake-up costs as much again.
 */
const SPIN_AFTER_RESULT_MS = 0.25
/** A parked worker wakes this often to let its event loop serve control calls. */
const PARK_SLICE_MS = 5
/** Longest stretch of handler calls before the event loop gets a turn. */
const YIELD_EVERY_MS = 5

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

interface Task extends LaneInit {
  control: MessagePort
}

export default async function laneTask(task: Task): Promise<LaneExit> {
  let handler: LoadedHandler
  let codec: Codec
  try {
    codec = await loadCodec(task.codec)
    handler = await loadHandler(task.handler, task.lane)
  } catch (err) {
    task.control.close()
    if (err instanceof HandlerInvalid) return { kind: 'handler-invalid', message: err.message }
    throw err
  }
  const lane = new LaneLoop(task, handler, codec)
  exposeControl(
    {
      ready: async () => {},
      broadcast: async (event) => {
        await handler.definition.onEvent?.(event, handler.context)
      },
    },
    task.control,
  )
  try {
    const exit = await lane.run()
    if (exit.kind === 'drained') await teardownAll()
    return exit
  } finally {
    task.control.close()
  }
}

class LaneLoop {
  private readonly reader: RingReader
  private readonly completions: RingWriter
  private readonly ring: Buffer
  private readonly out: Buffer
  private readonly stats: Float64Array
  private readonly handle: HandlerDefinition['handle']
  private readonly context: HandlerContext

  constructor(
    private readonly task: Task,
    handler: LoadedHandler,
    private readonly codec: Codec,
  ) {
    this.reader = new RingReader(task.requests)
    this.completions = new RingWriter(task.completions)
    this.ring = Buffer.from(task.requests)
    this.out = Buffer.from(task.completions)
    this.stats = new Float64Array(task.stats)
    this.handle = handler.definition.handle.bind(handler.definition)
    this.context = handler.context
  }

  async run(): Promise<LaneExit> {
    const { reader, stats } = this
    // Release often enough that a small ring never waits for a whole batch: about one
    // release per 4 KiB of ring, at most one per RELEASE_EVERY_MAX records.
    const releaseEvery = Math.max(1, Math.min(RELEASE_EVERY_MAX, reader.capacity >> 12))
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
      let answered = false
      let offset: number
      while ((offset = reader.next()) >= 0) {
        const tag = reader.tag
        stats[Stat.HANDLING] = 1
        let published = this.process(offset, reader.length, tag, reader.start)
        if (published !== true && published !== false) published = await published
        reader.markDone(reader.cursor)
        stats[Stat.HANDLING] = 0
        if (published || ++sinceRelease >= releaseEvery) {
          reader.release()
          sinceRelease = 0
          answered ||= (tag & Tag.WANTS_RESULT) !== 0
          if (reader.state === RingState.CLOSED) break
        }
        if (++sinceCheck >= checkEvery) {
          const now = performance.now()
          checkEvery = (now - lastCheck) / sinceCheck >= 0.05 ? 1 : 64
          sinceCheck = 0
          lastCheck = now
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
      if (state === RingState.CLOSED) return { kind: 'aborted' }
      if (state === RingState.CLOSING && !reader.hasNext()) return { kind: 'drained' }
      // Park in slices: a wake-up goes straight back to reading; a slice that passes quietly
      // gives the event loop its turn (control calls) before parking again.
      if (
        !this.spin(answered ? SPIN_AFTER_RESULT_MS : SPIN_MS) &&
        !reader.waitSync(PARK_SLICE_MS)
      ) {
        await yieldToEventLoop()
        lastYield = performance.now()
      }
    }
  }

  private spin(ms: number): boolean {
    const until = performance.now() + ms
    do {
      for (let i = 0; i < 64; i++) if (this.reader.hasNext()) return true
    } while (performance.now() < until)
    return false
  }

  /**
   * Runs one record through the handler. True if it published a completion. The common case
   * (a sync handler that returns) stays synchronous: no promise, no microtask per message.
   */
  private process(
    offset: number,
    length: number,
    tag: number,
    start: number,
  ): boolean | Promise<boolean> {
    let message: unknown
    try {
      message = this.codec.fromWire(this.ring, offset, length)
    } catch (err) {
      return this.undecodable(err, start, offset, length)
    }
    let result: unknown
    this.context.attempt = 1
    try {
      result = this.handle(message, this.context)
    } catch (err) {
      return this.fail(err, 1, offset, length, tag, start)
    }
    if (isThenable(result)) return this.settle(result, 1, offset, length, tag, start)
    return this.succeeded(result, 1, tag, start)
  }

  /** Decoding is deterministic: no retry; the raw payload goes back to be dead-lettered. */
  private async undecodable(
    err: unknown,
    start: number,
    offset: number,
    length: number,
  ): Promise<boolean> {
    const error = serializeError(err)
    error.code = 'DECODE_FAILED'
    error.message = `codec '${this.codec.name}' could not decode the message: ${error.message}`
    await this.emit(Completion.GAVE_UP, start, 1, error, offset, length)
    return true
  }

  /** Counts a success; answers the caller if one awaits the result. */
  private succeeded(
    result: unknown,
    attempt: number,
    tag: number,
    start: number,
  ): boolean | Promise<boolean> {
    this.stats[Stat.HANDLED]++
    if ((tag & Tag.WANTS_RESULT) === 0) return false
    return this.answer(start, attempt, result)
  }

  private async settle(
    pending: PromiseLike<unknown>,
    attempt: number,
    offset: number,
    length: number,
    tag: number,
    start: number,
  ): Promise<boolean> {
    let result: unknown
    try {
      result = await pending
    } catch (err) {
      return this.fail(err, attempt, offset, length, tag, start)
    }
    return this.succeeded(result, attempt, tag, start)
  }

  /** Reports a failed attempt, then retries after a backoff, in place: per-lane order holds. */
  private async fail(
    err: unknown,
    attempt: number,
    offset: number,
    length: number,
    tag: number,
    start: number,
  ): Promise<boolean> {
    const { task, stats, context } = this
    for (;;) {
      stats[Stat.FAILED]++
      const last = attempt >= task.attempts
      await this.emit(
        last ? Completion.GAVE_UP : Completion.FAILED,
        start,
        attempt,
        serializeError(err),
        offset,
        length,
      )
      if (last) return true
      if (task.backoffMs > 0) await sleep(task.backoffMs * 2 ** (attempt - 1))
      context.attempt = ++attempt
      let result: unknown
      try {
        result = await this.handle(this.codec.fromWire(this.ring, offset, length), context)
      } catch (next) {
        err = next
        continue
      }
      await this.succeeded(result, attempt, tag, start)
      // This record published failures: release at once so its settlement follows them.
      return true
    }
  }

  private async answer(start: number, attempt: number, result: unknown): Promise<boolean> {
    let body: Buffer
    try {
      body = serialize(result)
    } catch (err) {
      const error = serializeError(err)
      error.code = 'RESULT_ENCODE_FAILED'
      error.message = `the handler's result could not be serialized for run(): ${error.message}`
      await this.emit(Completion.GAVE_UP, start, attempt, error, 0, 0)
      return true
    }
    await this.emit(Completion.RESULT, start, attempt, undefined, 0, 0, body)
    return true
  }

  /** Writes one completion record and publishes it; waits (blocking) while the ring is full. */
  private async emit(
    kind: number,
    start: number,
    attempt: number,
    error: SerializedError | undefined,
    payloadOffset: number,
    payloadLength: number,
    body?: Buffer,
  ): Promise<void> {
    const { completions, out } = this
    let errorText = error ? JSON.stringify(error) : ''
    const restLength = body ? body.byteLength : payloadLength
    const room = completions.maxPayload - COMPLETION_PREFIX - restLength
    if (room < 0) throw new Error('completion larger than the completion ring') // cannot happen: rings are sized for it
    if (Buffer.byteLength(errorText) > room)
      errorText = JSON.stringify({
        ...error,
        stack: undefined,
        message: error?.message.slice(0, room / 4),
      })
    const size = COMPLETION_PREFIX + Buffer.byteLength(errorText) + restLength
    let at = completions.reserve(size)
    while (at < 0) {
      // The main thread drains completions when RELEASE moves or is rung: ring it, then wait.
      // Never release here: the record being handled is not finished, and RELEASE past it
      // would let the main thread settle it (and reuse its memory) too early.
      completions.publish()
      this.reader.ring()
      await completions.waitForRelease(completions.released, PARK_SLICE_MS)
      at = completions.reserve(size)
    }
    out.writeUInt32LE(start >>> 0, at)
    out.writeUInt32LE(attempt, at + 4)
    const errorBytes = out.write(errorText, at + COMPLETION_PREFIX, 'utf8')
    out.writeUInt32LE(errorBytes, at + 8)
    const restAt = at + COMPLETION_PREFIX + errorBytes
    if (body) out.set(body, restAt)
    else this.ring.copy(out, restAt, payloadOffset, payloadOffset + payloadLength)
    completions.commit(COMPLETION_PREFIX + errorBytes + restLength, kind)
    completions.publish()
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
}

function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return {
      name: err.name,
      message: err.message,
      stack: err.stack,
      code: typeof code === 'string' ? code : undefined,
    }
  }
  return { name: 'Error', message: `non-Error thrown: ${String(err)}` }
}
