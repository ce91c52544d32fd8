// Type tests of the metrics API: queue.metrics(), onSample(), and conveyor-lanes/metrics.
import { Registry } from 'prom-client'
import { expectTypeOf } from 'vitest'
import {
  createQueue,
  type DurationSummary,
  type MessageSample,
  type QueueMetrics,
} from '../../dist/src/index.js'
import {
  type QueueMetricsRegistration,
  registerQueueMetrics,
} from '../../dist/src/metrics/index.js'
import type { Order } from './handler.types.js'

const queue = createQueue<Order, string>({ handler: new URL('./handler.js', import.meta.url) })

expectTypeOf(queue.metrics()).toEqualTypeOf<QueueMetrics>()
expectTypeOf(queue.metrics({ reset: true }).service).toEqualTypeOf<DurationSummary>()
expectTypeOf(queue.metrics().service.p99).toEqualTypeOf<number>()
// @ts-expect-error reset is a boolean
queue.metrics({ reset: 'yes' })
const unsubscribe = queue.onSample((sample) => {
  expectTypeOf(sample).toEqualTypeOf<MessageSample>()
})
expectTypeOf(unsubscribe).toEqualTypeOf<() => void>()

// Any queue, whatever its message types, fits the adapter.
const registration = registerQueueMetrics(queue, {
  registry: new Registry(),
  prefix: 'orders_',
  labels: { queue: 'orders' },
  buckets: [0.001, 0.01, 0.1],
})
expectTypeOf(registration).toEqualTypeOf<QueueMetricsRegistration>()
registerQueueMetrics(createQueue({ handler: './h.js' }))
// @ts-expect-error label values are strings
registerQueueMetrics(queue, { labels: { shard: 1 } })
// @ts-expect-error not a queue
registerQueueMetrics({ stats: () => 1 })
