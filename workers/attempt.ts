import type { Codec } from '../src/codec/index.js'
import { Completion } from '../src/lane/completion.js'
import { serializeError } from '../src/lane/error-wire.js'
import { type RetryPolicy, Stat, Tag } from '../src/lane/protocol.js'
import { sleep } from '../src/sleep.js'
import type { HandlerDefinition } from '../src/worker.js'
import { customDelay, retryDelay } from './backoff.js'
import type { CompletionWriter } from './completion-writer.js'
import type { LaneContext } from './context.js'

/** One request record, as the lane loop read it. */
export interface RecordRef {
  /** Payload offset in the request ring's bytes. */
  offset: number
  length: number
  tag: number
  /** Cursor of the record's header: how completions name it. */
  start: number
}

/** What handling one record came to, for the lane loop. */
export const Handled = {
  /** Finished; nothing written on the completion ring. */
  QUIETLY: 0,
  /**
   * Finished, and completions were written: the loop releases at once, so the record's
   * settlement follows its completions promptly.
   */
  WITH_COMPLETION: 1,
  /**
   * Not finished: stop() aborted the lane while this record's handler ran, and it threw.
   * The record is not marked done, so stop() hands it back unprocessed.
   */
  ABANDONED: 2,
} as const
export type Handled = (typeof Handled)[keyof typeof Handled]

/**
 * Runs records through the user's handler: decode, call, retry in place with exponential
 * backoff (so per-lane order, and per-key order, hold through retries), and report what RELEASE
 * cannot say (results, failures, aborts) through the completion writer.
 *
 * A record flagged ABORTED is skipped; an attempt that throws once it is flagged ends it as
 * aborted (no retry, no dead letter). The common case, a sync handler that returns for a
 * push, stays synchronous: no promise per message.
 */
export class Attempts {
  private readonly call: HandlerDefinition['handle']
  /** The request ring as words: record tags. */
  private readonly words: Int32Array

  constructor(
    private readonly ring: Buffer,
    private readonly codec: Codec,
    private readonly definition: HandlerDefinition,
    private readonly context: LaneContext,
    private readonly completions: CompletionWriter,
    private readonly stats: Float64Array,
    private readonly retry: RetryPolicy,
  ) {
    this.call = definition.handle.bind(definition)
    this.words = new Int32Array(ring.buffer, ring.byteOffset, ring.byteLength >> 2)
  }

  handle(record: RecordRef): Handled | Promise<Handled> {
    if (record.tag & Tag.ABORTED) return this.aborted(record)
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
  private async undecodable(err: unknown, record: RecordRef): Promise<Handled> {
    const error = serializeError(err, 'DECODE_FAILED')
    error.message = `codec '${this.codec.name}' could not decode the message: ${error.message}`
    await this.completions.fail(Completion.GAVE_UP, record.start, 1, error, this.payload(record))
    return Handled.WITH_COMPLETION
  }

  /** Skipped, or given up, for its signal. */
  private async aborted(record: RecordRef): Promise<Handled> {
    await this.completions.aborted(record.start, this.context.attempt, this.payload(record))
    return Handled.WITH_COMPLETION
  }

  private async awaitResult(
    pending: PromiseLike<unknown>,
    attempt: number,
    record: RecordRef,
  ): Promise<Handled> {
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
  ): Handled | Promise<Handled> {
    this.stats[Stat.HANDLED]++
    if ((record.tag & Tag.WANTS_RESULT) === 0) return Handled.QUIETLY
    return this.completions.answer(record.start, attempt, result).then(withCompletion)
  }

  /** Reports the failed attempt, then tries again after a backoff, until attempts run out. */
  private async retryFailed(err: unknown, attempt: number, record: RecordRef): Promise<Handled> {
    const { context } = this
    for (;;) {
      const last = attempt >= this.retry.attempts
      if (context.aborted) {
        // An AbortError is the handler answering the abort, not a failure to report.
        const answer = isAbortError(err)
        if (this.flagged(record) && (answer || !last)) {
          // Its caller gave up on it: no retry (a real error is still reported). A real error
          // on the last attempt gives up as usual, below: there was no retry to prevent.
          if (!answer) await this.reportFailure(err, attempt, record, Completion.FAILED)
          return this.aborted(record)
        }
        // stop() timed out and the handler gave up for it: stop() hands the message back.
        if (answer) return Handled.ABANDONED
      }
      await this.reportFailure(err, attempt, record, last ? Completion.GAVE_UP : Completion.FAILED)
      if (last) return Handled.WITH_COMPLETION
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
        return Handled.WITH_COMPLETION
      }
      // An abort (its caller's, or stop() past its timeout) cuts the backoff short, and then
      // no further attempt is made: its caller gave up on it, or stop() hands it back.
      if (delayMs > 0) await sleep(delayMs, context.signal)
      if (context.aborted) return this.flagged(record) ? this.aborted(record) : Handled.ABANDONED
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
      // This record published failures: its settlement follows them at once.
      return Handled.WITH_COMPLETION
    }
  }

  private reportFailure(
    err: unknown,
    attempt: number,
    record: RecordRef,
    kind: typeof Completion.FAILED | typeof Completion.GAVE_UP,
  ): Promise<void> {
    this.stats[Stat.FAILED]++
    return this.completions.fail(
      kind,
      record.start,
      attempt,
      serializeError(err),
      this.payload(record),
    )
  }

  private flagged(record: RecordRef): boolean {
    return (Atomics.load(this.words, (record.offset >> 2) - 1) & Tag.ABORTED) !== 0
  }

  private payload(record: RecordRef): Uint8Array {
    return this.ring.subarray(record.offset, record.offset + record.length)
  }
}

/** What a handler throws when it stops for its signal (ctx.signal.reason, fetch's, Node's). */
function isAbortError(err: unknown): boolean {
  return (
    typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError'
  )
}

function withCompletion(): Handled {
  return Handled.WITH_COMPLETION
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  )
}
