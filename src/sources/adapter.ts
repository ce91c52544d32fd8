/**
 * What a broker must offer a BrokerSource (broker-source.ts): a handful of calls in the broker's
 * own terms. The source keeps the rules (credit, ack after the handler, leases, dead letters,
 * reconnects, close); an adapter only talks to its broker. Redis Streams, NATS JetStream and
 * RabbitMQ each have one; a Kafka adapter would too (ack = mark done, committing each
 * partition's offset only up to its first unfinished message; fetch = poll with the partitions
 * of a full buffer paused).
 */
export interface Delivery<H = unknown> {
  /** The broker's own handle: what ack/retry/extend take (an entry id, a message object). */
  readonly handle: H
  /** A printable id for events and errors (stream entry id, sequence, delivery tag). */
  readonly id: string
  readonly payload: Buffer
  /** How many times the broker has delivered this message, this delivery included (≥ 1). */
  readonly deliveries: number
}

export interface BrokerAdapter<H = unknown> {
  /**
   * Up to `max` new deliveries (redelivered ones included). May wait a little for some; must
   * answer promptly with what it has (or []) once `signal` aborts. Throws when the connection
   * fails: the source reports it and calls again after a backoff (unless fatal() says no
   * reconnect can cure that error).
   */
  fetch(max: number, signal: AbortSignal): Promise<Delivery<H>[]>
  /**
   * Asked of every error fetch() throws: is it one that no reconnect can cure, because the
   * broker refuses this configuration (a key of another type, a queue, stream or group that
   * must exist and does not, refused permissions or credentials)? Then return a message that
   * names the broker's error and says what to change: the source ends its iteration with it
   * (SOURCE_FAILED, the error as `cause`), so `queue.consume(source)` rejects instead of
   * reconnecting forever. Return undefined for anything a retry may get past: a lost
   * connection, a timeout, a server restarting or failing over, a resource locked for a
   * while. Be conservative: a wrong undefined costs a 'disconnect' loop, a wrong message
   * stops a service that would have recovered. Absent: every error is retried.
   */
  fatal?(error: unknown): string | undefined
  /** The handlers finished these: acknowledge them, in one round trip where the broker can. */
  ack(deliveries: readonly Delivery<H>[]): Promise<void>
  /** The queue gave up on this delivery (fewer than maxDeliveries): make it come again. */
  retry(delivery: Delivery<H>, error: Error): Promise<void>
  /** Move it to the dead-letter place and acknowledge it, atomically where the broker can. */
  deadLetter(delivery: Delivery<H>, error: Error): Promise<void>
  /**
   * Every `leaseMs`, these are still unfinished (buffered or in lanes): keep the broker from
   * handing them to another consumer. Absent when the broker has no such clock.
   */
  extend?(deliveries: readonly Delivery<H>[]): Promise<void>
  readonly leaseMs?: number
  /**
   * close(): these were fetched but not finished. Give them back for redelivery (or leave them
   * pending, where that is the broker's way), then disconnect what the adapter opened itself.
   */
  close(unfinished: readonly Delivery<H>[]): Promise<void>
}
