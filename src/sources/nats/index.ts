/**
 * `conveyor-lanes/sources/nats`: a NATS JetStream durable pull consumer as a broker source.
 *
 * ```js
 * const source = natsSource({ servers: 'nats://nats:4222', stream: 'ORDERS', consumer: 'workers' })
 * await queue.consume(source) // until queue.stop()
 * await source.close()
 * ```
 *
 * Loading this entry point loads the NATS client (`@nats-io/transport-node` and
 * `@nats-io/jetstream`, optional peer dependencies); without them it throws PEER_MISSING
 * saying what to install. `conveyor-lanes` itself never loads them.
 */
import { EventFence } from '../../queue/events.js'
import { BrokerSource } from '../broker-source.js'
import type { SourceEvents } from '../source.js'
import { NatsAdapter } from './adapter.js'
import { loadNatsClient } from './client.js'
import { type NatsSourceOptions, resolveNatsOptions } from './options.js'
import type { NatsHandle } from './pull.js'

export type { NatsSourceOptions } from './options.js'
export type { NatsDelivery, NatsHandle } from './pull.js'

const client = await loadNatsClient()

/** A NATS JetStream source: `queue.consume(source)` drives it, `close()` after `queue.stop()`. */
export type NatsSource<T = unknown> = BrokerSource<T, NatsHandle>

/**
 * A source that pulls a JetStream stream's durable pull consumer on credit (never more
 * unsettled messages than maxInFlight), acks each message after its handler finished, extends
 * unfinished ones every ackWaitMs / 3 (`+WPI`), naks those the queue gave up on until
 * maxDeliveries, then publishes them to deadLetterSubject and terminates them. Several
 * processes on the same `consumer` share its messages. Options are checked here
 * (INVALID_OPTION); the stream and consumer on the first fetch (a missing or mismatched one
 * ends the source: consume() rejects with SOURCE_FAILED, its cause the INVALID_OPTION).
 */
export function natsSource<T = unknown>(options: NatsSourceOptions<T>): NatsSource<T> {
  const { shared, nats } = resolveNatsOptions<T>(options)
  const adapter = new NatsAdapter(client, nats)
  const source = new BrokerSource<T, NatsHandle>(adapter, shared)
  // Like the source's own reports: 'error' listeners, else a process warning.
  const fence = new EventFence<SourceEvents<T>>(source)
  adapter.report = (error) => fence.error(error)
  return source
}
