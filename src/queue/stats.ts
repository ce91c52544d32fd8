import type { ControllerView, Decision } from '../tune/controller.js'

/** Keeps the last WINDOW latency samples; percentiles are computed when asked for. */
const WINDOW = 4096

export class LatencySampler {
  private readonly samples = new Float64Array(WINDOW)
  private count = 0

  add(ms: number): void {
    this.samples[this.count++ % WINDOW] = ms
  }

  percentiles(): LatencyStats {
    const n = Math.min(this.count, WINDOW)
    if (n === 0) return { samples: 0, p50: 0, p90: 0, p99: 0, max: 0 }
    const sorted = this.samples.slice(0, n).sort()
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]
    return { samples: n, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[n - 1] }
  }
}

export interface LatencyStats {
  /**
   * Sampled messages the percentiles come from: the last 4096 samples (one message in 16 per
   * lane, see queue.metrics()), whatever metrics({ reset }) did.
   */
  samples: number
  p50: number
  p90: number
  p99: number
  max: number
}

export interface LaneStats {
  lane: number
  /** Messages handled successfully by this lane's workers (handler returned). */
  handled: number
  /** Handler errors (every failed attempt). */
  failed: number
  /** Messages written and not yet settled. */
  inFlight: number
  backlogBytes: number
  capacityBytes: number
  /** Share of wall time the lane's worker spent handling since start, 0..1. */
  busy: number
  /** Milliseconds the lane's workers spent handling messages, since the lane began. */
  busyMs: number
  /** Workers that died serving this lane. */
  restarts: number
}

export interface QueueStats {
  /** Messages accepted by push(), run() and consume(). */
  pushed: number
  completed: number
  /** Handler errors, every attempt. */
  failed: number
  deadLettered: number
  /** run() calls that rejected with the handler's error. */
  rejected: number
  /** Messages skipped (or given up) because their signal fired. */
  aborted: number
  inFlight: number
  /** push() calls waiting for room. */
  waiting: number
  backlogBytes: number
  /** Completed messages per second: since start, and over the last second. */
  rate: { total: number; recent: number }
  /** push → done, milliseconds, of recent sampled messages (queue.metrics() has histograms). */
  latencyMs: LatencyStats
  /**
   * How long the lanes would take to finish what they hold now, in ms, at their measured
   * service rates (the slowest lane's time); null until a lane with messages was measured.
   * With `drainBudgetMs` it stays within the budget.
   */
  drainEstimateMs: number | null
  /**
   * threads: { min, max }: the thread controller's view (the count it runs, its phase, the
   * noise it measured, the median throughput per count) and its recent decisions, each with
   * its reason and numbers. Absent for a fixed thread count.
   */
  autoscale?: ControllerView & { decisions: readonly Decision[] }
  threads: number
  uptimeMs: number
  lanes: LaneStats[]
}
