/**
 * `conveyor-lanes/metrics`: a queue's metrics for Prometheus, on prom-client (an optional
 * peer dependency: install it to use this entry; `conveyor-lanes` itself never loads it).
 */
export { DEFAULT_BUCKETS, type PrometheusOptions } from './options.js'
export {
  type MeasuredQueue,
  type QueueMetricsRegistration,
  registerQueueMetrics,
} from './prometheus.js'
