import type { ENVELOPES, Envelope, EnvelopeSource } from '../queue/consume.js'

/**
 * The contract every broker source keeps (Redis Streams, NATS JetStream, RabbitMQ; a Kafka
 * source would keep it too, see ARCHITECTURE.md). A source is an async iterable of envelopes
 * that `queue.consume(source)` drives, plus `close()`:
 *
 * - It pulls on credit: never more unsettled messages (fetched, not yet acked or given back)
 *   than `maxInFlight`, so the broker's redelivery clock does not run on messages that sit in
 *   memory.
 * - An envelope's `ack` runs only after the handler finished the message; the source acks the
 *   broker then (batched where the broker allows). `nack` (the queue gave up on it) leaves it
 *   for redelivery, or dead-letters it after `maxDeliveries`.
 * - While a message is unsettled, its lease is extended from the main thread, so a long
 *   CPU-bound handler does not see it handed to a second consumer.
 * - `close()` after `queue.stop()`: fetches nothing more, flushes the acks of what finished,
 *   and leaves everything unfinished for redelivery. It never acks unfinished work.
 */
export interface Source<T = unknown> extends EnvelopeSource<T> {
  readonly [ENVELOPES]: true
  [Symbol.asyncIterator](): AsyncIterator<BrokerEnvelope<T>>
  /** Stops fetching, flushes pending acks, gives unfinished messages back, disconnects. */
  close(): Promise<void>
}

/**
 * What a broker source yields. `ack` and `nack` are always there: code that drives a source
 * itself (iterating it, as a results sink does) calls them like consume() would. `id` and
 * `deliveries` say which broker message it is, for a sink that must recognise a redelivery.
 */
export interface BrokerEnvelope<T = unknown> extends Envelope<T> {
  /** The handler finished it (and whatever must follow it is done): acknowledge it. */
  ack(): void
  /** It failed: back to the broker for redelivery, or dead-lettered after `maxDeliveries`. */
  nack(error: Error): void
  /** The broker's printable id: a stream entry id, a stream sequence, a delivery tag. */
  readonly id: string
  /** How many times the broker has delivered it, this delivery included (≥ 1). */
  readonly deliveries: number
}

/** What every broker source tells its listeners (an EventEmitter, fenced like the queue's). */
export interface SourceEvents<T = unknown> {
  /** The connection failed (a fetch, an ack or a lease extension threw): reconnecting. */
  disconnect: [info: { error: Error; attempt: number; retryInMs: number }]
  /** Fetching works again after a disconnect. */
  reconnect: [info: { attempts: number }]
  /** A message went to the broker's dead-letter place after `maxDeliveries` (or undecodable). */
  'dead-letter': [letter: { value: T | undefined; error: Error; deliveries: number; id: string }]
  /** Something failed that no message carries (without a listener: a process warning). */
  error: [error: Error]
}

/** Options every broker source takes, with their defaults. */
export interface SourceOptions<T = unknown> {
  /**
   * Most messages fetched and not yet settled (acked, dead-lettered or given back). Fetches ask
   * only for what is left of it. Keep it a small multiple of the queue's threads: messages
   * beyond what the lanes can start soon only age in memory.
   * @default 64
   */
  maxInFlight?: number
  /**
   * Deliveries after which a message that failed again goes to the dead-letter place instead
   * of back to the broker. 1: never redelivered after a failure.
   * @default 5
   */
  maxDeliveries?: number
  /**
   * Turns a message's payload (a Buffer) into the value handlers get. A decode that throws
   * dead-letters the message at once (code DECODE_FAILED).
   * @default JSON.parse of the payload as UTF-8
   */
  decode?: (payload: Buffer) => T
  /** The routing key for `ordering: 'key'` (called after decode). @default none */
  key?: (value: T) => string | number | undefined
  /** Acks wait at most this long to be sent in one batch. @default 5 */
  ackIntervalMs?: number
  /** Acks sent in one batch at most. @default 256 */
  ackBatch?: number
  /** How long close() waits for acks and dead letters in flight to reach the broker. @default 5000 */
  closeTimeoutMs?: number
  /** Reconnect backoff: first delay, doubling, capped, with jitter. @default { backoffMs: 100, maxBackoffMs: 5000 } */
  reconnect?: { backoffMs?: number; maxBackoffMs?: number }
}
