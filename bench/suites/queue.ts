import type { BenchContext, Case, Sampling, Suite } from '../harness.js'
import {
  BATCH,
  conveyorPushCase,
  conveyorRunLatencyCase,
  inlineCase,
  NOOP_HANDLER,
  piscinaBatchCase,
  piscinaRunCase,
  piscinaRunLatencyCase,
  WORK_HANDLER,
  type Workload,
} from '../support/cases.js'
import { asciiMessages } from '../support/messages.js'
import { quickThreadCounts, threadCounts } from '../support/threads.js'
import { calibrate, roundsFor } from '../support/work.js'
import { conveyorRing, ringTransportSizes } from './ring-transport.js'

/**
 * Issue 3's acceptance numbers, side by side in one run:
 *  1. noop handler end to end (push → ack, codec 'string', 256-byte strings, 1 thread) next to
 *     the raw ring transport of the ring-transport suite, re-run here: target ≥ 75% of it;
 *     and the same through pushMany() in batches of 256: target ≥ 90% of it (issue 8).
 *  2. a ~20 µs CPU-bound handler at threads 1 … availableParallelism() (thinned past 8; --quick:
 *     1, 2 and all cores), against the same work
 *     inline on the main thread and Piscina run() per message / batched with as many threads:
 *     target conveyor at 2 threads ≥ 1.8× inline.
 *  3. run() round trip when idle, sequential, against Piscina run(): target median < 20 µs.
 */
const MESSAGE_BYTES = 256
const POOL = 64
/** The raw ring case's ring size; conveyor's noop lane gets the same. */
const RING_BYTES = 256 * 1024
const COST_US = 20
const PUSH_MANY_BATCH = 256

const NOOP = 'push-ack noop'
const RAW = `${NOOP} raw ring`
const INLINE = `cpu=${COST_US}us inline`
const LATENCY = 'run() latency'

function sizes(quick: boolean) {
  return quick ? { targetMs: 40, latencyOps: 300 } : { targetMs: 150, latencyOps: 2000 }
}

export const queueSuite: Suite = {
  name: 'queue',
  description:
    'end to end: push → ack (noop) vs the raw ring; a 20 µs handler across threads vs inline and Piscina; run() latency when idle',
  sampling({ quick }: BenchContext): Partial<Sampling> {
    // Samples are sized by time (SampleSize), so a time budget only adds samples.
    // A fresh queue or pool starts on cold workers: warm up by time, not just by count.
    return quick
      ? { warmupIterations: 2, warmupTime: 200, iterations: 5, time: 0 }
      : { warmupIterations: 3, warmupTime: 500, iterations: 10, time: 1500 }
  },
  info() {
    const c = calibrate()
    return {
      'work calibration': `${c.nsPerRound.toFixed(1)} ns/round on main; ${COST_US} µs = ${roundsFor(COST_US)} rounds`,
    }
  },
  cases({ quick }: BenchContext): Case[] {
    const { targetMs, latencyOps } = sizes(quick)
    const messages = asciiMessages(POOL, MESSAGE_BYTES)
    const noop: Workload = { messages, rounds: 0 }
    const cpu: Workload = { messages, rounds: roundsFor(COST_US) }
    const cases: Case[] = []

    // 1. noop push → ack vs the raw ring.
    cases.push(
      conveyorPushCase(
        {
          name: `${NOOP} conveyor`,
          group: NOOP,
          params: { impl: 'conveyor', threads: 1, costUs: 0, bytes: MESSAGE_BYTES },
          targets: [{ label: 'push→ack ≥ 75% of the raw ring', peer: RAW, atLeast: 0.75 }],
        },
        noop,
        { handler: NOOP_HANDLER, threads: 1, laneBytes: RING_BYTES },
        targetMs,
      ),
      conveyorPushCase(
        {
          name: `${NOOP} conveyor pushMany ${PUSH_MANY_BATCH}`,
          group: NOOP,
          params: {
            impl: `conveyor pushMany ${PUSH_MANY_BATCH}`,
            threads: 1,
            costUs: 0,
            bytes: MESSAGE_BYTES,
          },
          targets: [{ label: 'pushMany→ack ≥ 90% of the raw ring', peer: RAW, atLeast: 0.9 }],
        },
        noop,
        { handler: NOOP_HANDLER, threads: 1, laneBytes: RING_BYTES },
        targetMs,
        PUSH_MANY_BATCH,
      ),
      {
        ...conveyorRing(messages, ringTransportSizes(quick).fast),
        name: RAW,
        conveyor: false,
        group: NOOP,
        params: { impl: 'raw ring', threads: 1, costUs: 0, bytes: MESSAGE_BYTES },
      },
    )

    // 2. CPU-heavy handler across threads.
    const cell = { costUs: COST_US, bytes: MESSAGE_BYTES }
    cases.push(
      inlineCase({ name: INLINE, params: { impl: 'inline', threads: 1, ...cell } }, cpu, targetMs),
    )
    for (const threads of quick ? quickThreadCounts() : threadCounts()) {
      const group = `cpu=${COST_US}us threads=${threads}`
      cases.push(
        conveyorPushCase(
          {
            name: `${group} conveyor`,
            group,
            peers: [INLINE],
            params: { impl: 'conveyor', threads, ...cell },
            targets:
              threads === 2
                ? [{ label: '2 threads ≥ 1.8× inline', peer: INLINE, atLeast: 1.8 }]
                : undefined,
          },
          cpu,
          { handler: WORK_HANDLER, threads },
          targetMs,
        ),
        piscinaRunCase(
          {
            name: `${group} piscina run()`,
            group,
            params: { impl: 'piscina run()', threads, ...cell },
          },
          cpu,
          threads,
          targetMs,
        ),
        piscinaBatchCase(
          {
            name: `${group} piscina batch ${BATCH}`,
            group,
            params: { impl: `piscina batch ${BATCH}`, threads, ...cell },
          },
          cpu,
          threads,
          targetMs,
        ),
      )
    }

    // 3. run() latency when idle.
    const message = messages[0]
    cases.push(
      conveyorRunLatencyCase(
        {
          name: `${LATENCY} conveyor`,
          group: LATENCY,
          params: { impl: 'conveyor', threads: 1, bytes: MESSAGE_BYTES },
          targets: [{ label: 'run() median < 20 µs', below: 20 }],
        },
        message,
        latencyOps,
      ),
      piscinaRunLatencyCase(
        {
          name: `${LATENCY} piscina run()`,
          group: LATENCY,
          params: { impl: 'piscina run()', threads: 1, bytes: MESSAGE_BYTES },
        },
        message,
        latencyOps,
      ),
    )
    return cases
  },
}
