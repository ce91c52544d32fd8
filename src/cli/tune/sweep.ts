import { setTimeout as sleep } from 'node:timers/promises'
import { isConveyorError } from '../../errors.js'
import { createQueue } from '../../queue/index.js'
import type { QueueStats } from '../../queue/stats.js'

/**
 * Runs the user's handler on their messages in every configuration (thread count × lane size)
 * and measures each.
 *
 * Side by side: the measured time of each configuration is split into `repeats` slices, and
 * the slices are interleaved: repeat 1 runs every configuration once, then repeat 2 does, each
 * repeat starting one configuration further along. A slow stretch of the machine (another
 * process, a thermal dip) then costs one slice of several configurations, not all of one, and
 * the median across repeats leaves it out.
 *
 * Every slice runs on a fresh queue: started, warmed up (JIT, caches, lanes filled), measured,
 * stopped. Keeping every configuration's pool alive instead would hold up to sum(threads) ×
 * lane sizes workers at once, and parked workers still wake every few ms.
 *
 * What one slice measures, over its window (after the warm-up):
 * - throughput: messages finished (completed or dead-lettered) per second;
 * - service time and push → done latency, p50 and p99: `queue.metrics()` of the window (one
 *   message in 16 per lane is timed);
 * - the main thread's event-loop utilisation: the producer's share of a core. It pushes as fast
 *   as the lanes take messages (`pushMany` batches), so near 1 it is the bottleneck.
 *
 * Each message gets one attempt (`retry.attempts: 1`): a retry's backoff would hold the lane
 * and measure the retry policy rather than the handler. A handler that throws is counted
 * (`failed`, `deadLettered`) and its message counts as finished; the run goes on.
 */

export interface Configuration {
  threads: number
  laneBytes: number
}

export interface SweepOptions {
  /** The handler module's href. */
  handler: string
  /** Messages to push, cycled. Non-empty, each encodable as JSON. */
  messages: readonly unknown[]
  configurations: readonly Configuration[]
  /** Measured seconds per configuration, over all repeats. */
  durationS: number
  /** Slices per configuration (≥ 1; the CLI asks for ≥ 3). */
  repeats: number
  /** Seconds of warm-up before each slice's window. */
  warmupS: number
  /** Called before each slice, e.g. for a progress line. */
  onSlice?: (slice: { repeat: number; index: number; total: number } & Configuration) => void
}

/** One slice's window. Times in ms, rates per second. */
export interface SliceResult {
  throughput: number
  windowMs: number
  /** Messages finished in the window (completed + dead-lettered). */
  finished: number
  /** Handler errors in the window. */
  failed: number
  deadLettered: number
  /** Worker threads that died and were replaced in the window. */
  restarts: number
  serviceP50: number
  serviceP99: number
  latencyP50: number
  latencyP99: number
  /** Sampled messages behind those percentiles. */
  samples: number
  /** Main-thread event-loop utilisation, 0..1. */
  mainThreadUtilisation: number
}

export interface ConfigurationResult extends Configuration {
  /** Median across repeats, msg/s. */
  throughput: number
  /** Each repeat's throughput, msg/s, in repeat order. */
  throughputs: number[]
  /** Medians across repeats, ms. */
  serviceMs: { p50: number; p99: number }
  latencyMs: { p50: number; p99: number }
  /** Median across repeats, 0..1. */
  mainThreadUtilisation: number
  /** Sums over the measured windows. */
  finished: number
  failed: number
  deadLettered: number
  restarts: number
  samples: number
}

export interface SweepResult {
  configurations: ConfigurationResult[]
  /** The first handler error seen, as "Name: message", for the report; null if none. */
  firstFailure: string | null
}

/** Messages per pushMany: one encode loop and one promise per batch, so the producer is cheap. */
const BATCH = 64

export async function sweep(options: SweepOptions): Promise<SweepResult> {
  const batches = toBatches(options.messages)
  const n = options.configurations.length
  const slices: SliceResult[][] = options.configurations.map(() => [])
  const sliceMs = (options.durationS * 1000) / options.repeats
  const seen = { firstFailure: null as string | null }
  for (let repeat = 0; repeat < options.repeats; repeat++) {
    for (let k = 0; k < n; k++) {
      const index = (repeat + k) % n
      const config = options.configurations[index]
      options.onSlice?.({
        repeat: repeat + 1,
        index: repeat * n + k + 1,
        total: n * options.repeats,
        ...config,
      })
      slices[index].push(
        await runSlice(options.handler, config, batches, options.warmupS * 1000, sliceMs, seen),
      )
    }
  }
  return {
    configurations: options.configurations.map((config, i) => summarize(config, slices[i])),
    firstFailure: seen.firstFailure,
  }
}

async function runSlice(
  handler: string,
  config: Configuration,
  batches: readonly unknown[][],
  warmupMs: number,
  windowMs: number,
  seen: { firstFailure: string | null },
): Promise<SliceResult> {
  const queue = createQueue({
    handler,
    threads: config.threads,
    laneBytes: config.laneBytes,
    codec: 'json',
    retry: { attempts: 1 },
  })
  queue.on('failed', (error) => {
    seen.firstFailure ??= `${error.name}: ${error.message}`
  })
  // Worker deaths and setup failures of replacements: counted through stats (restarts); a
  // listener keeps them from becoming process warnings on every slice.
  queue.on('error', () => {})
  let producing = true
  let producerError: unknown
  try {
    await queue.start()
    const producer = (async () => {
      for (let b = 0; producing; b = (b + 1) % batches.length) {
        await queue.pushMany(batches[b])
      }
    })().catch((err: unknown) => {
      // stop() refuses the batch that waits for room: that is how the producer ends.
      if (!isConveyorError(err, 'QUEUE_STOPPED')) producerError = err
    })
    await sleep(warmupMs)
    queue.metrics({ reset: true })
    const before = snapshot(queue.stats())
    await sleep(windowMs)
    const after = snapshot(queue.stats())
    const metrics = queue.metrics()
    producing = false
    // What is still in the lanes is not measured: stop at once, hand it back unprocessed.
    await queue.stop({ timeoutMs: 0 })
    await producer
    if (producerError !== undefined) throw producerError
    const elapsedMs = after.at - before.at
    const finished = after.finished - before.finished
    return {
      throughput: (finished * 1000) / elapsedMs,
      windowMs: elapsedMs,
      finished,
      failed: after.failed - before.failed,
      deadLettered: after.deadLettered - before.deadLettered,
      restarts: after.restarts - before.restarts,
      serviceP50: metrics.service.p50,
      serviceP99: metrics.service.p99,
      latencyP50: metrics.latency.p50,
      latencyP99: metrics.latency.p99,
      samples: metrics.service.count,
      mainThreadUtilisation: performance.eventLoopUtilization(after.elu, before.elu).utilization,
    }
  } finally {
    producing = false
    await queue.stop({ timeoutMs: 0 }).catch(() => {})
  }
}

function snapshot(stats: QueueStats) {
  return {
    at: performance.now(),
    elu: performance.eventLoopUtilization(),
    finished: stats.completed + stats.deadLettered,
    failed: stats.failed,
    deadLettered: stats.deadLettered,
    restarts: stats.lanes.reduce((sum, lane) => sum + lane.restarts, 0),
  }
}

/**
 * The messages as pushMany batches covering the list at least once: a list shorter than a
 * batch is repeated to fill one, and the last batch wraps to the start of the list.
 */
export function toBatches(messages: readonly unknown[]): unknown[][] {
  if (messages.length === 0) throw new Error('toBatches(): no messages')
  const total = Math.ceil(messages.length / BATCH) * BATCH
  const batches: unknown[][] = []
  for (let i = 0; i < total; i += BATCH) {
    batches.push(Array.from({ length: BATCH }, (_, j) => messages[(i + j) % messages.length]))
  }
  return batches
}

function summarize(config: Configuration, slices: SliceResult[]): ConfigurationResult {
  const sum = (f: (s: SliceResult) => number) => slices.reduce((n, s) => n + f(s), 0)
  const med = (f: (s: SliceResult) => number) => median(slices.map(f))
  return {
    ...config,
    throughput: med((s) => s.throughput),
    throughputs: slices.map((s) => s.throughput),
    serviceMs: { p50: med((s) => s.serviceP50), p99: med((s) => s.serviceP99) },
    latencyMs: { p50: med((s) => s.latencyP50), p99: med((s) => s.latencyP99) },
    mainThreadUtilisation: med((s) => s.mainThreadUtilisation),
    finished: sum((s) => s.finished),
    failed: sum((s) => s.failed),
    deadLettered: sum((s) => s.deadLettered),
    restarts: sum((s) => s.restarts),
    samples: sum((s) => s.samples),
  }
}

/** The middle value; the mean of the two middle ones for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}
