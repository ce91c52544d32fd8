import { Stat } from '../lane/protocol.js'
import type { Lane } from './lane.js'

/** How often the service rates are measured and the lanes' limits set, with a budget. */
export const BUDGET_TICK_MS = 100
/** A lane must have been busy this long since the last measure for a new one. */
const MIN_BUSY_MS = 5
/** Weight of a new measure in the running one (an exponential moving average). */
const ALPHA = 0.5

/**
 * `drainBudgetMs`: each lane takes no more messages than it can finish within the budget at
 * its measured service rate, so stop() can always drain in time. Kubernetes gives a pod about
 * 30 s between SIGTERM and SIGKILL: with the budget below that, a stop() never leaves
 * accepted messages to die with the process.
 *
 * The rate is the lane's own: records finished (handled or failed attempts) per millisecond
 * its worker was busy in handlers, from the counters the worker keeps in the stats block, as
 * a moving average. A lane not measured yet takes the mean rate of the measured ones, or one
 * message at a time if none is: a slow handler is never given a backlog it cannot drain.
 * What does not fit waits for room in push order, as when the ring is full.
 *
 * The estimate follows the handler: if it becomes ten times slower, the backlog written under
 * the old rate takes up to ten times the budget until the next measures (every 100 ms).
 */
export class DrainBudget {
  /** Per lane: records per busy ms (0: not measured yet), and the counters last seen. */
  private readonly rates = new Map<Lane, { perMs: number; done: number; busyMs: number }>()

  constructor(private readonly budgetMs: number | undefined) {}

  /** Measures every lane's rate, and sets each one's limit when a budget is set. */
  update(lanes: readonly Lane[]): void {
    this.measureAll(lanes)
    if (this.budgetMs === undefined) return
    const fallback = this.meanRate(lanes)
    for (const lane of lanes) {
      const perMs = this.rates.get(lane)?.perMs || fallback
      lane.maxOutstanding = perMs > 0 ? Math.max(1, Math.floor(perMs * this.budgetMs)) : 1
    }
  }

  /** Measures every lane's rate (often is fine: a lane busy for too short is skipped). */
  measureAll(lanes: readonly Lane[]): void {
    for (const lane of lanes) this.measure(lane)
  }

  /** A lane just made: measured from zero, limited from its first message. */
  added(lane: Lane, lanes: readonly Lane[]): void {
    this.rates.set(lane, { perMs: 0, done: 0, busyMs: 0 })
    if (this.budgetMs === undefined) return
    const fallback = this.meanRate(lanes)
    lane.maxOutstanding = fallback > 0 ? Math.max(1, Math.floor(fallback * this.budgetMs)) : 1
  }

  /** How long the lanes would take to drain what they hold now: the slowest lane's time. */
  estimateMs(lanes: readonly Lane[]): number | null {
    let worst = 0
    const fallback = this.meanRate(lanes)
    for (const lane of lanes) {
      if (lane.outstanding === 0) continue
      const perMs = this.rates.get(lane)?.perMs || fallback
      if (!(perMs > 0)) return null
      worst = Math.max(worst, lane.outstanding / perMs)
    }
    return worst
  }

  private measure(lane: Lane): void {
    const s = lane.statSlots
    const done = s[Stat.HANDLED] + s[Stat.FAILED]
    const busyMs = s[Stat.BUSY_MS]
    const seen = this.rates.get(lane)
    if (!seen) {
      this.rates.set(lane, { perMs: 0, done, busyMs })
      return
    }
    const busy = busyMs - seen.busyMs
    // A replacement worker starts its counters over: start measuring again from there.
    if (busy < 0 || done < seen.done) {
      seen.done = done
      seen.busyMs = busyMs
      return
    }
    if (busy < MIN_BUSY_MS) return
    const perMs = (done - seen.done) / busy
    seen.perMs = seen.perMs === 0 ? perMs : ALPHA * perMs + (1 - ALPHA) * seen.perMs
    seen.done = done
    seen.busyMs = busyMs
  }

  private meanRate(lanes: readonly Lane[]): number {
    let sum = 0
    let n = 0
    for (const lane of lanes) {
      const perMs = this.rates.get(lane)?.perMs ?? 0
      if (perMs > 0) {
        sum += perMs
        n++
      }
    }
    return n === 0 ? 0 : sum / n
  }
}
