import { ConveyorError, isConveyorError } from '../errors.js'
import type { EventFence } from './events.js'
import type { EventLoopTurns } from './turns.js'

/** A source item with its own settlement callbacks (`consume(source, { envelopes: true })`). */
export interface Envelope<T = unknown> {
  value: T
  key?: string | number
  ack?: () => void
  nack?: (error: Error) => void
}

/**
 * Marks an iterable whose items are always envelopes (every broker source): consume() treats
 * them so without `{ envelopes: true }`.
 */
export const ENVELOPES: unique symbol = Symbol.for('conveyor-lanes.envelopes')

export interface EnvelopeSource<T = unknown> extends AsyncIterable<Envelope<T>> {
  readonly [ENVELOPES]: true
}

function yieldsEnvelopes(source: unknown): boolean {
  return (
    typeof source === 'object' &&
    source !== null &&
    (source as { [ENVELOPES]?: unknown })[ENVELOPES] === true
  )
}

export interface ConsumeOptions {
  /**
   * Items are Envelopes: their ack/nack are called when the message settles. Default false,
   * true for an EnvelopeSource (a broker source).
   */
  envelopes?: boolean
  /** Pushes that may wait for room at once. Default 1: the source is never read further ahead. */
  concurrency?: number
}

export interface ConsumeResult<In = unknown> {
  /** Items pushed (accepted by the queue). */
  consumed: number
  /** Plain items the stopping queue refused: put them back where they came from. */
  refused: In[]
}

const STOPPED: unique symbol = Symbol('stopped')

/** What consume() needs from its queue. */
export interface ConsumeTarget {
  push(value: unknown, options?: Envelope): Promise<void>
  /** Resolves when the queue begins to stop. */
  readonly stopping: Promise<void>
  readonly turns: EventLoopTurns
  readonly events: EventFence
}

/**
 * Pulls a source at the rate the lanes take its items. It ends when the source ends, when a
 * push fails, or when the queue stops, even if the source's next() never answers: it then
 * closes the source (return()) without waiting for it.
 */
export async function consume(
  target: ConsumeTarget,
  source: AsyncIterable<unknown> | Iterable<unknown>,
  options: ConsumeOptions = {},
): Promise<ConsumeResult<unknown>> {
  const concurrency = options.concurrency ?? 1
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ConveyorError(
      'INVALID_OPTION',
      `consume(): concurrency must be an integer ≥ 1, got ${String(concurrency)}`,
    )
  }
  const envelopes = options.envelopes ?? yieldsEnvelopes(source)
  const iterator = iteratorOf(source)
  const stopped = target.stopping.then((): typeof STOPPED => STOPPED)
  let consumed = 0
  const refused: unknown[] = []
  let failure: Error | undefined
  const inFlight = new Set<Promise<void>>()
  let ended = false
  try {
    while (!failure) {
      const next = await Promise.race([iterator.next(), stopped])
      if (next === STOPPED) break
      if (next.done) {
        ended = true
        break
      }
      const item = next.value
      const envelope = envelopes ? (item as Envelope) : undefined
      const pushed = (envelope ? target.push(envelope.value, envelope) : target.push(item)).then(
        () => {
          consumed++
        },
        (err: Error) => {
          if (envelope?.nack) target.events.call1(envelope.nack, err)
          else if (isConveyorError(err, 'QUEUE_STOPPED')) refused.push(item)
          failure ??= err
        },
      )
      inFlight.add(pushed)
      void pushed.then(() => inFlight.delete(pushed))
      if (inFlight.size >= concurrency) await Promise.race(inFlight)
      // Pushes into lanes with room resolve at once: give timers and I/O their turn.
      const turn = target.turns.due()
      if (turn) await turn
    }
  } finally {
    if (!ended) {
      // Don't wait on a source that may never answer; report its failure to close, though.
      Promise.resolve(iterator.return?.()).catch(() => {})
    }
  }
  await Promise.all(inFlight)
  if (failure && !isConveyorError(failure, 'QUEUE_STOPPED')) throw failure
  return { consumed, refused }
}

function iteratorOf(
  source: AsyncIterable<unknown> | Iterable<unknown>,
): AsyncIterator<unknown> | Iterator<unknown> {
  if (source && typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return (source as AsyncIterable<unknown>)[Symbol.asyncIterator]()
  }
  if (source && typeof (source as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return (source as Iterable<unknown>)[Symbol.iterator]()
  }
  throw new ConveyorError(
    'INVALID_OPTION',
    'consume(source): source must be an iterable or an async iterable',
  )
}
