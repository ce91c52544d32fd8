import type { QueueOptions } from './options.js'
import { Queue } from './queue.js'

export type { ControllerView, Decision as ThreadDecision } from '../tune/controller.js'
export {
  type ConsumeOptions,
  type ConsumeResult,
  ENVELOPES,
  type Envelope,
  type EnvelopeSource,
} from './consume.js'
export type { DeadLetter, PauseInfo, QueueEvents } from './events.js'
export { type HandlerIn, type HandlerOut, type HandlerRef, handlerUrl } from './handler-ref.js'
export type {
  DurationSummary,
  MessageSample,
  MetricsOptions,
  QueueMetrics,
  SampleObserver,
} from './metrics.js'
export type { QueueOptions, Threads } from './options.js'
export type { PushManyOptions, PushOptions, RunOptions, StopReport } from './queue.js'
export { Queue } from './queue.js'
export type { LaneStats, LatencyStats, QueueStats } from './stats.js'

/**
 * Creates a queue; options are checked now (typed errors), workers start on `start()`.
 * `In`/`Out`: the handler's message and result types, given (`createQueue<Order, string>`)
 * or inferred from `handler: handlerUrl<typeof import('./handler.js')>(…)`.
 */
export function createQueue<In = unknown, Out = unknown>(
  options: QueueOptions<In, Out>,
): Queue<In, Out> {
  return new Queue<In, Out>(options)
}
