import type { BenchContext, Case, Sampling, Suite } from '../harness.js'
import {
  BATCH,
  conveyorPushCase,
  inlineCase,
  piscinaBatchCase,
  piscinaRunCase,
  tinypoolRunCase,
  WORK_HANDLER,
  type Workload,
} from '../support/cases.js'
import { asciiMessages } from '../support/messages.js'
import { threadCounts } from '../support/threads.js'
import { calibrate, roundsFor } from '../support/work.js'

/**
 * Issue 4's matrix: handler cost (µs of pure JS per message) × message size × threads. Each
 * cell runs conveyor (push → ack, codec 'string') against Piscina run() per message, Piscina
 * run() batched, Tinypool run() with as many threads, and the same work inline on one thread
 * (one inline case per cost × size, shared by that cell's thread counts).
 *
 * Threads: 1 … availableParallelism() (thinned past 8, see threadCounts). Cells are short (a
 * sample ~150 ms; ≥ 300 ms and 2 samples of warm-up, 4 samples) so the full matrix takes about
 * two minutes on 2 cores. --quick runs only cost 0 and 10 µs at 1 KiB and the most threads.
 * --filter matches cell names: 'cost=10us', 'size=16KiB', 'threads=2', 'cost=0us size=64B'
 * (a chosen conveyor case brings its inline peer along).
 */
const COSTS_US = [0, 1, 10, 100]
const SIZES = [64, 1024, 16 * 1024]
const QUICK_COSTS_US = [0, 10]
const QUICK_SIZES = [1024]
const POOL = 64
const IMPLS = ['conveyor', 'inline', 'piscina run()', `piscina batch ${BATCH}`, 'tinypool run()']

export function sizeLabel(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024}KiB` : `${bytes}B`
}

export const matrixSuite: Suite = {
  name: 'matrix',
  description: `handler cost ${COSTS_US.join('/')} µs × message ${SIZES.map(sizeLabel).join('/')} × threads; peers: ${IMPLS.slice(1).join(', ')}`,
  layout: 'grid',
  sampling({ quick }: BenchContext): Partial<Sampling> {
    // Short cells: few samples, but a warm-up by time (a fresh pool starts on cold workers).
    return quick
      ? { warmupIterations: 2, warmupTime: 200, iterations: 3, time: 0 }
      : { warmupIterations: 2, warmupTime: 300, iterations: 4, time: 0 }
  },
  info() {
    const c = calibrate()
    return {
      'work calibration': `${c.nsPerRound.toFixed(1)} ns/round on main; ${COSTS_US.map((us) => `${us} µs = ${roundsFor(us)}`).join(', ')} rounds`,
    }
  },
  cases({ quick }: BenchContext): Case[] {
    const targetMs = quick ? 40 : 150
    const costs = quick ? QUICK_COSTS_US : COSTS_US
    const sizes = quick ? QUICK_SIZES : SIZES
    const allThreads = threadCounts()
    const threadList = quick ? [allThreads[allThreads.length - 1]] : allThreads
    const cases: Case[] = []
    for (const costUs of costs) {
      for (const bytes of sizes) {
        const w: Workload = { messages: asciiMessages(POOL, bytes), rounds: roundsFor(costUs) }
        const base = `cost=${costUs}us size=${sizeLabel(bytes)}`
        const inline = `${base} inline`
        cases.push(
          inlineCase(
            {
              name: inline,
              group: `${base} inline`,
              params: { impl: 'inline', threads: 1, costUs, bytes },
            },
            w,
            targetMs,
          ),
        )
        for (const threads of threadList) {
          const group = `${base} threads=${threads}`
          const params = { threads, costUs, bytes }
          cases.push(
            conveyorPushCase(
              {
                name: `${group} conveyor`,
                group,
                peers: [inline],
                params: { impl: 'conveyor', ...params },
              },
              w,
              { handler: WORK_HANDLER, threads },
              targetMs,
            ),
            piscinaRunCase(
              {
                name: `${group} piscina run()`,
                group,
                params: { impl: 'piscina run()', ...params },
              },
              w,
              threads,
              targetMs,
            ),
            piscinaBatchCase(
              {
                name: `${group} piscina batch ${BATCH}`,
                group,
                params: { impl: `piscina batch ${BATCH}`, ...params },
              },
              w,
              threads,
              targetMs,
            ),
            tinypoolRunCase(
              {
                name: `${group} tinypool run()`,
                group,
                params: { impl: 'tinypool run()', ...params },
              },
              w,
              threads,
              targetMs,
            ),
          )
        }
      }
    }
    return cases
  },
}
