import { AbortError, ConveyorError } from '../errors.js'
import type { EventFence } from './events.js'

/**
 * What the main thread remembers about one message in a lane, if anything at all, and what
 * settling it means for each kind. A push with only an ack keeps the ack function itself: no
 * object per message on the hot path.
 *
 * Every message settles exactly once, in one of these ways: done (ack), a run() result, given
 * up (run() rejects, a push is dead-lettered and nacked), aborted (its signal fired: nacked
 * or rejected with an AbortError), or handed back unprocessed by stop().
 */
export type Pending = PushPending | RunPending | BatchPending | BatchCallbacks | (() => void)

/**
 * Where a written record lies, so an abort can flag it in shared memory. Only messages with
 * a signal are tracked: the lane fills these in when it writes the record.
 */
export interface Tracked {
  /** The message has a signal: the lane records where it wrote it. */
  tracked: boolean
  /** The lane it was written to, once written. */
  lane: AbortTarget | undefined
  /** Int32 index of the record's tag word in the request ring. */
  tagIndex: number
  /** The record's end cursor: past RELEASE, its memory may hold another record. */
  end: number
  /** The signal fired after the record was written. */
  aborted: boolean
  /** Removes the abort listener: called once, when the message settles. */
  detach: (() => void) | undefined
}

/** A lane, as an abort sees it (lane.ts implements it). */
export interface AbortTarget {
  /** Flags the record for the worker: skip it, or abort `ctx.signal` if it runs. */
  flagAborted(p: Tracked): void
}

export interface PushPending extends Tracked {
  kind: 'push'
  ack: (() => void) | undefined
  nack: ((error: Error, message: unknown) => void) | undefined
}

export interface RunPending extends Tracked {
  kind: 'run'
  resolve: (value: unknown) => void
  reject: (error: Error) => void
}

/**
 * One message of a pushMany() with a signal (it must be tracked on its own): the batch's
 * callbacks, told which message by its index.
 */
export interface BatchPending extends Tracked {
  kind: 'batch'
  batch: BatchCallbacks
  index: number
}

/**
 * A pushMany()'s callbacks. Without a signal, every message of the batch shares this one
 * object and the ack FIFO keeps each one's index: no object per message.
 */
export interface BatchCallbacks {
  kind: 'many'
  ack: ((index: number) => void) | undefined
  nack: ((error: Error, index: number, message: unknown) => void) | undefined
  tracked: false
  detach: undefined
}

/** Fields of an untracked object pending (a message without a signal). */
export const UNTRACKED = {
  tracked: false,
  lane: undefined,
  tagIndex: 0,
  end: 0,
  aborted: false,
  detach: undefined,
} as const

/** How settlements reach the queue: user callbacks are called fenced, outcomes counted. */
export interface Settlements {
  /** User callbacks (acks, nacks), called fenced (events.ts). */
  readonly fence: Pick<EventFence, 'call0' | 'call1' | 'call2' | 'call3'>
  deadLettered(error: Error, message: unknown): void
  /** A run() caller got the handler's error (or the worker's death). */
  rejected(): void
  /** A message's signal fired before it settled otherwise. */
  aborted(): void
}

export function isRun(p: Pending | undefined): p is RunPending {
  return typeof p === 'object' && p.kind === 'run'
}

function detach(p: Pending | undefined): void {
  if (typeof p === 'object' && p.detach !== undefined) {
    p.detach()
    p.detach = undefined
  }
}

/**
 * The handler finished `count` messages that share `p` (a run of one ack FIFO group), the
 * first at `index` (its place in its pushMany(), when `p` is the batch's shared callbacks; the
 * FIFO keeps it). What to call is found once, then called per message.
 */
export function settleDone(
  p: Pending | undefined,
  s: Settlements,
  index: number,
  count: number,
): void {
  if (p === undefined) return
  const { fence } = s
  if (typeof p === 'function') {
    for (let i = 0; i < count; i++) fence.call0(p)
    return
  }
  if (p.kind === 'many') {
    const { ack } = p
    if (ack) for (let i = 0; i < count; i++) fence.call1(ack, index + i)
    return
  }
  // A message's own pending (a push or run() with options, one message of a batch with a
  // signal): each is its own object, so its group holds it alone.
  for (let i = 0; i < count; i++) {
    detach(p)
    if (p.kind === 'push') {
      if (p.ack) fence.call0(p.ack)
    } else if (p.kind === 'batch') {
      if (p.batch.ack) fence.call1(p.batch.ack, p.index)
    } else {
      // Cannot happen: a result-awaiting record always gets a completion first.
      p.reject(new ConveyorError('WORKER_DIED', 'the message was finished without a result'))
    }
  }
}

/** A run() caller's result (ignored when its signal already rejected it). */
export function settleResult(p: Pending | undefined, value: unknown): void {
  if (!isRun(p)) return
  detach(p)
  p.resolve(value)
}

/** The last attempt failed: a run() rejects, a push is dead-lettered (and nacked). */
export function settleGaveUp(
  p: Pending | undefined,
  error: Error,
  message: unknown,
  s: Settlements,
  index: number,
): void {
  detach(p)
  if (isRun(p)) {
    p.reject(error)
    s.rejected()
    return
  }
  if (typeof p === 'object') {
    if (p.kind === 'push' && p.nack) s.fence.call2(p.nack, error, message)
    else if (p.kind === 'batch' && p.batch.nack)
      s.fence.call3(p.batch.nack, error, p.index, message)
    else if (p.kind === 'many' && p.nack) s.fence.call3(p.nack, error, index, message)
  }
  s.deadLettered(error, message)
}

/** The worker skipped the message, or its handler gave up on it, because its signal fired. */
export function settleAborted(
  p: Pending | undefined,
  message: unknown,
  s: Settlements,
  index: number,
): void {
  detach(p)
  s.aborted()
  if (typeof p !== 'object') return
  const error = new AbortError('the message was aborted by its signal')
  if (p.kind === 'run') p.reject(error)
  else if (p.kind === 'push' && p.nack) s.fence.call2(p.nack, error, message)
  else if (p.kind === 'batch' && p.batch.nack) s.fence.call3(p.batch.nack, error, p.index, message)
  else if (p.kind === 'many' && p.nack) s.fence.call3(p.nack, error, index, message)
}

/** stop() hands the message back: a run() caller learns the queue stopped. */
export function settleUnprocessed(p: Pending | undefined): void {
  detach(p)
  if (isRun(p)) {
    p.reject(
      new ConveyorError('QUEUE_STOPPED', 'the queue stopped before this message was handled'),
    )
  }
}
