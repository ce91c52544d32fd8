/**
 * `conveyor-lanes/sources/redis`: a Redis stream, read through a consumer group, as a source for
 * `queue.consume(source)`, on ioredis (an optional peer dependency: loaded only by a source that
 * opens its own connections).
 */
import { BrokerSource } from '../broker-source.js'
import { MISSING_FIELD, RedisStreamsAdapter } from './adapter.js'
import { type RedisSourceOptions, resolveRedisOptions } from './options.js'

export type { BrokerEnvelope, Source, SourceEvents, SourceOptions } from '../source.js'
export type { RedisSourceOptions } from './options.js'

/** What redisSource() returns: a BrokerSource (an EventEmitter of SourceEvents) over a stream. */
export type RedisSource<T> = BrokerSource<T, string>

/**
 * Consumes one Redis stream as one consumer of a consumer group: several processes (or
 * machines) with a source on the same stream and group share its entries. It pulls on credit
 * (XREADGROUP COUNT ≤ what maxInFlight leaves), acks after the handler finished (one XACK per
 * batch), keeps the entries it holds from being claimed (XCLAIM … JUSTID every claimIdleMs / 3),
 * claims the entries of crashed consumers (XAUTOCLAIM after claimIdleMs), dead-letters to
 * `deadLetterStream` after maxDeliveries (XADD + XACK in one MULTI), reconnects after a loss,
 * and on close() leaves what is unfinished pending, idle, for the next claim. Options are
 * checked at once (INVALID_OPTION); it connects on the first fetch.
 *
 * ```ts
 * const source = redisSource({ redis: 'redis://127.0.0.1:6379', stream: 'orders', group: 'billing' })
 * const consuming = queue.consume(source)
 * process.once('SIGTERM', async () => {
 *   await queue.stop({ timeoutMs: 10_000 })
 *   await source.close()
 * })
 * ```
 */
export function redisSource<T = unknown>(options: RedisSourceOptions<T>): RedisSource<T> {
  const { shared, adapter: adapterOptions } = resolveRedisOptions<T>(options)
  const { field } = adapterOptions
  const decode = shared.decode
  const adapter = new RedisStreamsAdapter(adapterOptions)
  const source = new BrokerSource<T, string>(adapter, {
    ...shared,
    decode: (payload) => {
      if (payload === MISSING_FIELD) throw new Error(`the entry has no field '${field}'`)
      return decode(payload)
    },
  })
  adapter.onError = (error) => {
    if (source.listenerCount('error') > 0) source.emit('error', error)
    else process.emitWarning(error)
  }
  return source
}
