import { describe, expect, it } from 'vitest'
import type { PlantSpec } from '../support/plant.js'
import { acceptable, convergedAfter, mode, simulate } from '../support/simulate.js'

/**
 * The thread controller against simulated machines (issue 9's acceptance, the simulation part).
 * Each scenario runs the same controller code window by window against a plant (see
 * test/support/plant.ts: cores, a producer ceiling that loses a little per lane, contention,
 * ±5 % noise, 4 % burst windows, a 10× step in handler cost), for several seeds. Everything is
 * counted in windows, never in wall-clock time.
 *
 * What "converged" means (test/support/simulate.ts): the first window at a good count from which
 * every later window is within ±1 of a good count. A good count is within 5 % of the plant's best
 * throughput and at most `slack` above the smallest count that is, slack = max(1, ⌈8 % of it⌉):
 * one lane on 64 cores is ~1.6 % of throughput, below what 3–6 windows at ±5 % noise can tell
 * apart, so 60 and 64 lanes are the same answer there.
 *
 * The bounds are what this controller achieves over these seeds, with some room (the largest
 * seen is in the comment); SIM_REPORT=1 prints the table.
 */

/** Seeds 1..8; SIM_SEEDS=n runs 1..n. */
const SEEDS = Array.from({ length: Number(process.env.SIM_SEEDS ?? 8) }, (_, i) => i + 1)
/** Windows at the end that must hold one count ±1. */
const TAIL = 40

interface Scenario {
  readonly name: string
  readonly spec: Omit<PlantSpec, 'seed'>
  readonly max: number
  readonly initial: number
  /** Windows to run. */
  readonly windows: number
  /** Convergence is counted from this window (the step change), else from 0. */
  readonly from?: number
  /** Windows to converge, for every seed. */
  readonly within: number
}

// CPU-bound: a 20 µs handler, the producer far from its limit.
const cpu = (cores: number) => ({
  cores,
  handlerUs: 20,
  producerUs: cores === 64 ? 0.2 : 1,
})
// Producer-bound: the main thread pushes 500 k msg/s at most; a 5 µs handler needs 2.5 lanes.
const producerBound = (cores: number) => ({ cores, handlerUs: 5, producerUs: 2 })
// Step: a 2 µs handler (producer-bound), 10× heavier from window 80 (lane-bound).
const step = (cores: number) => ({
  cores,
  handlerUs: 2,
  producerUs: cores === 64 ? 0.5 : 1,
  step: { at: 80, handlerUs: 20 },
})

/** A scenario of `windows` windows (300 with a step, counted from the step at 80). */
function scenario(
  name: string,
  spec: Omit<PlantSpec, 'seed'>,
  initial: number,
  within: number,
): Scenario {
  const stepped = spec.step !== undefined
  return {
    name,
    spec,
    max: spec.cores,
    initial,
    windows: stepped ? 300 : 200,
    ...(stepped ? { from: spec.step!.at } : {}),
    within,
  }
}

// `within` is the bound asserted for every seed run here (1..8). The comments give what 32
// seeds showed (median / 90th percentile / max windows to converge); of those 448 runs, 4
// missed: 3 whose last 40 windows spanned 3 counts instead of 2 (cpu 64 from 1, seed 15; cpu
// 64 from 64, seed 24; step 64, seed 27: all on a plateau where those counts are within 3 %),
// and 1 input-starved run (from 8, seed 16) that a burst led to keep a useless lane until the
// run ended.
const scenarios: Scenario[] = [
  // From one lane (a `{ min: 1, max }` range started low): the search doubles its steps.
  scenario('cpu-bound, 4 cores, from 1', cpu(4), 1, 10), // 7 / 7 / 7
  scenario('cpu-bound, 16 cores, from 1', cpu(16), 1, 40), // 15 / 34 / 34
  scenario('cpu-bound, 64 cores, from 1', cpu(64), 1, 50), // 23 / 23 / 47
  // From the ceiling ('auto' starts there).
  scenario('cpu-bound, 4 cores, from 4', cpu(4), 4, 5), // 0 / 0 / 0
  scenario('cpu-bound, 16 cores, from 16', cpu(16), 16, 25), // 0 / 18 / 18
  scenario('cpu-bound, 64 cores, from 64', cpu(64), 64, 30), // 0 / 0 / 28
  // Producer-bound from the ceiling: shed down to the smallest count within 5 %.
  scenario('producer-bound, 4 cores', producerBound(4), 4, 20), // 0 / 0 / 18
  scenario('producer-bound, 16 cores', producerBound(16), 16, 30), // 7 / 7 / 26
  scenario('producer-bound, 64 cores', producerBound(64), 64, 40), // 15 / 15 / 35
  // A 10× heavier handler at window 80, from producer-bound to lane-bound.
  scenario('10× step, 4 cores', step(4), 4, 10), // 7 / 7 / 7
  // (a search steps by the producer's room when every lane is busy: was 31 / 34 / 133 at +1)
  scenario('10× step, 16 cores', step(16), 16, 40), // 11 / 11 / 18
  scenario('10× step, 64 cores', step(64), 64, 130), // 50 / 75 / 125
]

function runScenario(s: Scenario, seed: number) {
  const run = simulate({ ...s.spec, seed }, { min: 1, max: s.max, initial: s.initial }, s.windows)
  const good = acceptable(run.plant, s.max, s.windows - 1)
  const from = s.from ?? 0
  const after = convergedAfter(run, from, s.windows, good.ok)
  const tail = run.lanes.slice(-TAIL)
  return { run, good, after, tail, held: mode(tail) }
}

describe('thread controller, simulated machines', () => {
  const report: string[] = []

  for (const s of scenarios) {
    it(`${s.name}: converges within ${s.within} windows, ±1 at steady state`, () => {
      const windows: number[] = []
      for (const seed of SEEDS) {
        const { run, good, after, tail, held } = runScenario(s, seed)
        const context = `seed ${seed}: lanes ${run.lanes.join(' ')}`
        // Within 5 % of the optimum, with (about) the smallest count that gives it.
        expect(good.ok(held), `held ${held}, smallest good ${good.smallest}; ${context}`).toBe(true)
        expect(after, context).toBeDefined()
        expect(after!, context).toBeLessThanOrEqual(s.within)
        // No oscillation beyond ±1 at steady state.
        expect(Math.max(...tail) - Math.min(...tail), context).toBeLessThanOrEqual(2)
        // Never outside [min, max].
        expect(Math.min(...run.lanes)).toBeGreaterThanOrEqual(1)
        expect(Math.max(...run.lanes)).toBeLessThanOrEqual(s.max)
        windows.push(after!)
      }
      const sorted = [...windows].sort((a, b) => a - b)
      const { good } = runScenario(s, 1)
      report.push(
        `${s.name.padEnd(30)} smallest good ${String(good.smallest).padStart(2)} (+${good.slack}), best at ${String(good.bestLanes).padStart(2)}; over ${SEEDS.length} seeds, windows to converge: median ${sorted[sorted.length >> 1]}, max ${sorted[sorted.length - 1]} (bound ${s.within})`,
      )
    })
  }

  it('does not grow when the producer is the bottleneck', () => {
    // 500 k msg/s from the producer, 2.5 lanes' worth of handler time: 3 lanes is the smallest
    // good count; at 3 and above the main thread is saturated and the lanes have slack.
    for (const cores of [4, 16, 64]) {
      for (const initial of [3, Math.min(cores, 6)]) {
        for (const seed of SEEDS) {
          const run = simulate(
            { ...producerBound(cores), seed },
            { min: 1, max: cores, initial },
            150,
          )
          const context = `${cores} cores from ${initial}, seed ${seed}: ${run.lanes.join(' ')}`
          expect(Math.max(...run.lanes), context).toBe(initial)
          const good = acceptable(run.plant, cores, 149)
          expect(good.ok(mode(run.lanes.slice(-TAIL))), context).toBe(true)
        }
      }
    }
  })

  it('started at the ceiling, keeps every lane that is busy on its own CPU (no probe down)', () => {
    // 'auto' starts at the CPUs: with every lane busy and the producer far from saturated, a
    // probe of one fewer would cost 1/n of the throughput for a second to learn nothing.
    for (const cores of [2, 4, 16]) {
      for (const seed of SEEDS) {
        const run = simulate({ ...cpu(cores), seed }, { min: 1, max: cores, initial: cores }, 150)
        const context = `${cores} cores, seed ${seed}: ${run.lanes.join(' ')}`
        expect(Math.min(...run.lanes), context).toBe(cores)
      }
    }
    // Without the CPU count (the old rule 7) it does probe: the test can tell the difference.
    const probing = simulate(
      { ...cpu(4), seed: 1 },
      { min: 1, max: 4, initial: 4, cpus: undefined },
      150,
    )
    expect(Math.min(...probing.lanes)).toBeLessThan(4)
  })

  it('does not grow when input-starved', () => {
    // The source offers 100 k msg/s: 2 lanes' worth of a 20 µs handler, on 16 cores.
    for (const initial of [3, 8]) {
      for (const seed of SEEDS) {
        const run = simulate(
          { cores: 16, handlerUs: 20, producerUs: 1, inputRate: 100_000, seed },
          { min: 1, max: 16, initial },
          200,
        )
        const context = `from ${initial}, seed ${seed}: ${run.lanes.join(' ')}`
        expect(Math.max(...run.lanes), context).toBe(initial)
        const good = acceptable(run.plant, 16, 199)
        expect(good.ok(mode(run.lanes.slice(-TAIL))), context).toBe(true)
        // Growth only from a count where the lanes, not the source, were the limit (at 2 lanes
        // the 100 k msg/s need all of both: a probe of 3 is right there, and is undone).
        const starvedGrowth = run.decisions.filter(
          (d) =>
            d.change > 0 &&
            // an undone removal (back to, or half way back to, where it came from) is no growth
            !/^(too costly|no gain)/.test(d.reason) &&
            run.plant.throughput(d.previous, d.window).limit === 'input',
        )
        expect(starvedGrowth, context).toEqual([])
      }
    }
  })

  it('every change says why, with its numbers', () => {
    const { run } = runScenario(scenarios[11], 1)
    for (const d of run.decisions) {
      if (d.change !== 0) expect(d.reason).toMatch(/\d.*(%|msg\/s)/)
    }
    if (process.env.SIM_REPORT) console.log(report.join('\n'))
  })
})
