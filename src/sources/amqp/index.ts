/**
 * `conveyor-lanes/sources/amqp`: a RabbitMQ queue as a source for `queue.consume(source)`, on
 * amqplib (an optional peer dependency, loaded only when the source first connects).
 */
import { BrokerSource } from '../broker-source.js'
import { AmqpAdapter, type AmqpHandle } from './adapter.js'
import { requireAmqplibInstalled } from './client.js'
import { type AmqpSourceOptions, resolveAmqpOptions } from './options.js'

export type { BrokerEnvelope, Source, SourceEvents, SourceOptions } from '../source.js'
export type { AmqpHandle } from './adapter.js'
export { DELIVERIES_HEADER } from './adapter.js'
export type { AmqpQueueType, AmqpSourceOptions } from './options.js'

/** What amqpSource() returns: a BrokerSource (an EventEmitter of SourceEvents) over RabbitMQ. */
export type AmqpSource<T> = BrokerSource<T, AmqpHandle>

/**
 * Consumes one RabbitMQ queue: several processes (or machines) with a source on the same queue
 * share its messages, RabbitMQ handing each to one of them. It pulls on credit (`basic.qos`
 * prefetch = maxInFlight), acks after the handler finished (batched), retries with
 * `basic.reject` requeue, dead-letters with `basic.nack` to the queue's dead-letter exchange
 * after maxDeliveries, reconnects after a loss, and on close() hands back what is unfinished.
 * It connects on the first fetch; options are checked at once (INVALID_OPTION).
 *
 * ```ts
 * const source = amqpSource({ url: 'amqp://localhost', queue: 'orders', maxInFlight: 16 })
 * const consuming = queue.consume(source)
 * process.once('SIGTERM', async () => {
 *   await queue.stop({ timeoutMs: 10_000 })
 *   await source.close()
 * })
 * ```
 */
export function amqpSource<T = unknown>(options: AmqpSourceOptions<T>): AmqpSource<T> {
  const resolved = resolveAmqpOptions<T>(options)
  if (resolved.adapter.url !== undefined) requireAmqplibInstalled()
  return new BrokerSource<T, AmqpHandle>(new AmqpAdapter(resolved.adapter), resolved.shared)
}
