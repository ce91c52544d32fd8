import type { Codec } from '../src/codec/index.js'
import { Completion } from '../src/lane/completion.js'
import { serializeError } from '../src/lane/error-wire.js'
import { type RetryPolicy, Stat, Tag } from '../src/lane/protocol.js'
import type { HandlerContext, HandlerDefinition } from '../src/worker.js'
import { customDelay, retryDelay } from './backoff.js'
import type { CompletionWriter } from './completion-writer.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** One request record, as the lane loop read it. */
export interface RecordRef {
  /** Payload offset in the request ring's bytes. */
  offset: number
  length: number
  tag: number
  /** Cursor of the record's header: how completions name it. */
  start: number
}

/**
 * Runs records through the user's handler: decode, call, retry in place with exponential
 * backoff (so per-lane order, and per-key order, hold through retries), and report what RELEASE
 * cannot say (results, failures) through the completion writer.
 *
 * `handle()` returns true when it wrote a completion (the loop then releases at once, so the
 * record's settlement follows its completions promptly), false when it wrote none. The common
 * case, a sync handler that returns for a push, stays synchronous: no promise per message.
 */
export class Attempts {
  private readonly call: HandlerDefinition['handle']

  constructor(
    private readonly ring: Buffer,
    private readonly codec: Codec,
    private readonly definition: HandlerDefinition,
    private readonly context: HandlerContext,
    private readonly completions: CompletionWriter,
    private readonly stats: Float64Array,
    private readonly retry: RetryPolicy,
  ) {
    this.call = definition.handle.bind(definition)
  }

  handle(record: RecordRef): boolean | Promise<boolean> {
    let message: unknown
    try {
      message = this.codec.fromWire(this.ring, record.offset, record.length)
    } catch (err) {
      return this.undecodable(err, record)
    }
    let result: unknown
    this.context.attempt = 1
    try {
      result = this.call(message, this.context)
    } catch (err) {
      return this.retryFailed(err, 1, record)
    }
    if (isThenable(result)) return this.awaitResult(result, 1, record)
    return this.succeeded(result, 1, record)
  }

  /** Decoding is deterministic: no retry; the raw payload goes back to be dead-lettered. */
  private async undecodable(err: unknown, record: RecordRef): Promise<boolean> {
    const error = serializeError(err, 'DECODE_FAILED')
    error.message = `codec '${this.codec.name}' could not decode the message: ${error.message}`
    await this.completions.fail(Completion.GAVE_UP, record.start, 1, error, this.payload(record))
    return true
  }

  private async awaitResult(
    pending: PromiseLike<unknown>,
    attempt: number,
    record: RecordRef,
  ): Promise<boolean> {
    let result: unknown
    try {
      result = await pending
    } catch (err) {
      return this.retryFailed(err, attempt, record)
    }
    return this.succeeded(result, attempt, record)
  }

  /** Counts a success; answers the caller if one awaits the result. */
  private succeeded(
    result: unknown,
    attempt: number,
    record: RecordRef,
  ): boolean | Promise<boolean> {
    this.stats[Stat.HANDLED]++
    if ((record.tag & Tag.WANTS_RESULT) === 0) return false
    return this.completions.answer(record.start, attempt, result).then(() => true)
  }

  /** Reports the failed attempt, then tries again after a backoff, until attempts run out. */
  private async retryFailed(err: unknown, attempt: number, record: RecordRef): Promise<boolean> {
    const { context } = this
    for (;;) {
      this.stats[Stat.FAILED]++
      const last = attempt >= this.retry.attempts
      await this.completions.fail(
        last ? Completion.GAVE_UP : Completion.FAILED,
        record.start,
        attempt,
        serializeError(err),
        this.payload(record),
      )
      if (last) return true
      let delayMs: number
      try {
        delayMs = this.definition.backoff
          ? customDelay(this.definition.backoff(attempt, err, context))
          : retryDelay(this.retry, attempt, Math.random)
      } catch (bug) {
        // A broken backoff() is the handler's bug: the message gives up with it, visibly.
        await this.completions.fail(
          Completion.GAVE_UP,
          record.start,
          attempt,
          serializeError(bug),
          this.payload(record),
        )
        return true
      }
      if (delayMs > 0) await sleep(delayMs)
      context.attempt = ++attempt
      let result: unknown
      try {
        result = await this.call(
          this.codec.fromWire(this.ring, record.offset, record.length),
          context,
        )
      } catch (next) {
        err = next
        continue
      }
      await this.succeeded(result, attempt, record)
      // This record published failures: true, so its settlement follows them at once.
      return true
    }
  }

  private payload(record: RecordRef): Uint8Array {
    return this.ring.subarray(record.offset, record.offset + record.length)
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
}
