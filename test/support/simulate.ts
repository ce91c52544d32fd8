/**
 * Drives the thread controller against a plant, window by window, the way the queue will:
 * run a window at the current count, hand it to observe(), apply the decision.
 */
import {
  type ControllerOptions,
  type Decision,
  ThreadController,
} from '../../src/tune/controller.js'
import { Plant, type PlantSpec } from './plant.js'

export interface Run {
  readonly plant: Plant
  readonly controller: ThreadController
  /** Lanes each window ran. */
  readonly lanes: number[]
  readonly decisions: Decision[]
}

export function simulate(
  spec: PlantSpec,
  bounds: Omit<ControllerOptions, 'initial'> & { initial: number },
  windows: number,
): Run {
  const plant = new Plant(spec)
  // As the queue wires it: the plant's cores are the CPUs the lanes may use.
  const controller = new ThreadController({ cpus: spec.cores, ...bounds })
  const lanes: number[] = []
  const decisions: Decision[] = []
  let n = controller.lanes
  for (let i = 0; i < windows; i++) {
    lanes.push(n)
    const decision = controller.observe(plant.run(n))
    decisions.push(decision)
    n = decision.lanes
  }
  return { plant, controller, lanes, decisions }
}

/** The count held most over a stretch of windows. */
export function mode(values: readonly number[]): number {
  const counts = new Map<number, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  let best = values[0]
  for (const [v, c] of counts) if (c > counts.get(best)!) best = v
  return best
}

/**
 * What a good count is on the plant at a window: within 5 % of the best throughput, and at
 * most `slack` = max(1, ⌈8 % of the smallest⌉) above the smallest count that is (the controller
 * cannot tell apart counts whose throughputs differ by less than the noise: on 64 cores one
 * lane is ~1.6 %, and 60 and 64 lanes are within 3 % of each other).
 */
export function acceptable(plant: Plant, max: number, window: number) {
  const opt = plant.optimum(max, window)
  const slack = Math.max(1, Math.ceil(0.08 * opt.smallest))
  return {
    ...opt,
    slack,
    ok: (n: number) =>
      plant.throughput(n, window).rate >= 0.95 * opt.best && n <= opt.smallest + slack,
  }
}

/**
 * Windows (after `from`) until the run converged: the first window at a good count from which
 * every window up to `end` is within ±1 of a good count (probes at steady state step ±1).
 * undefined when it never converges.
 */
export function convergedAfter(
  run: Run,
  from: number,
  end: number,
  ok: (n: number) => boolean,
): number | undefined {
  const near = (n: number) => ok(n) || ok(n - 1) || ok(n + 1)
  let at = end
  while (at > from && near(run.lanes[at - 1])) at--
  while (at < end && !ok(run.lanes[at])) at++
  return at < end ? at - from : undefined
}
