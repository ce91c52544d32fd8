/**
 * Every error conveyor raises on purpose is a ConveyorError with a stable `code`, so callers
 * can branch on `err.code` instead of parsing messages. Messages say what to change.
 */
export type ConveyorErrorCode =
  /** An option (or a per-call option) has a wrong type or value. */
  | 'INVALID_OPTION'
  /** A message's encoded form is larger than a lane may carry (half of laneBytes). */
  | 'MESSAGE_TOO_LARGE'
  /** The codec threw, or returned something other than a string or a Uint8Array. */
  | 'ENCODE_FAILED'
  /** A worker's codec could not decode a message: dead-lettered at once, never retried. */
  | 'DECODE_FAILED'
  /** A run() result could not be serialized, or is larger than a lane may carry back. */
  | 'RESULT_ENCODE_FAILED'
  /** The handler module cannot be imported, or exports no handler. */
  | 'HANDLER_INVALID'
  /** A replacement worker's setup() threw; its lane is retried with a growing delay. */
  | 'SETUP_FAILED'
  /** A handler's teardown() threw on stop(); reported once, the lane is not restarted. */
  | 'TEARDOWN_FAILED'
  /** start() (or a resize) waited longer than startTimeoutMs for handlers' setup(). */
  | 'START_TIMEOUT'
  /** A worker died (crash, process.exit, out of memory) while handling or setting up. */
  | 'WORKER_DIED'
  | 'QUEUE_STOPPED'
  | 'QUEUE_NOT_STARTED'
  /** maxWaiting pushes already wait for room. */
  | 'QUEUE_FULL'
  /** add() on a batched writer (conveyor-lanes/executors) after its close() began. */
  | 'EXECUTOR_CLOSED'
  /**
   * A batched writer's execute(batch) threw and it has no onError: flush(), wait() or close()
   * rejects with it (an ExecuteError, its `batch` the items that failed, `cause` the error).
   */
  | 'EXECUTE_FAILED'
  /**
   * A batched writer's execute(batch) did not settle within executeTimeoutMs: the batch failed
   * like a throw (to onError, or an ExecuteError whose `cause` has this code).
   */
  | 'EXECUTE_TIMEOUT'
  /**
   * A broker source's message was delivered more than maxDeliveries times without ever being
   * finished (its consumers died on it): dead-lettered without running.
   */
  | 'DELIVERY_LIMIT'
  /**
   * A broker source could not acknowledge, hand back or dead-letter a message (it will come
   * back); or its broker refused its configuration for good (a missing queue, stream or group,
   * a key of another type, refused permissions or credentials): the source ends, consume()
   * rejects with it, the message says what to change and `cause` is the broker's error.
   */
  | 'SOURCE_FAILED'
  /** A message finished after its source's close(): it was given back and will come again. */
  | 'SOURCE_CLOSED'
  /**
   * A broker source's client (an optional peer dependency: ioredis, @nats-io/*, amqplib) is
   * not installed: the message says what to install.
   */
  | 'PEER_MISSING'

export class ConveyorError extends Error {
  readonly code: ConveyorErrorCode
  /**
   * Set when pushMany() rejects after some of its messages entered the queue: the first
   * `accepted` messages are in it (they settle as usual), the rest are not.
   */
  accepted?: number

  constructor(code: ConveyorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ConveyorError'
    this.code = code
  }
}

/**
 * What push(), pushMany() and run() reject with when their `signal` fires, and what a
 * message skipped for its signal is nacked with: Node's own convention (`name`
 * 'AbortError', `code` 'ABORT_ERR', the signal's reason as `cause`).
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  /** As on ConveyorError: how many of a pushMany()'s messages entered the queue. */
  accepted?: number

  constructor(message = 'the operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

export function isConveyorError(err: unknown, code?: ConveyorErrorCode): err is ConveyorError {
  return err instanceof ConveyorError && (code === undefined || err.code === code)
}

/** A value as an error message shows it ("got …"): short, and never a function's source. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'symbol') return value.toString()
  if (value === null || typeof value !== 'object') return String(value)
  return Array.isArray(value) ? 'an array' : 'an object'
}

/** What was thrown, as an Error (a non-Error becomes one whose message shows it). */
export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(`non-Error thrown: ${String(err)}`)
}

/**
 * A process warning ('ConveyorWarning', the error's code when it has one): where an error
 * has nowhere else to go. Never an exception, never silence.
 */
export function emitConveyorWarning(message: string, error: Error): void {
  const code = (error as { code?: unknown }).code
  process.emitWarning(`conveyor: ${message}`, {
    type: 'ConveyorWarning',
    code: typeof code === 'string' ? code : undefined,
  })
}
