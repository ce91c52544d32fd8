import type { QueueOptions } from './options.js'
import { Queue } from './queue.js'

export type { ConsumeOptions, ConsumeResult, Envelope } from './consume.js'
export type { DeadLetter, PauseInfo, QueueEvents } from './events.js'
export type { QueueOptions, Threads } from './options.js'
export type { PushOptions, StopReport } from './queue.js'
export { Queue } from './queue.js'
export type { LaneStats, LatencyStats, QueueStats } from './stats.js'

/** Creates a queue; options are checked now (typed errors), workers start on `start()`. */
export function createQueue(options: QueueOptions): Queue {
  return new Queue(options)
}
