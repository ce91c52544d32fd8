import { mkdirSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { cpuCeiling, createQueue, type Queue, type Threads } from '../src/index.js'
import { calibrate, roundsFor } from './support/work.js'

/**
 * Issue 9's acceptance, on this machine, every setting side by side in one run (rounds
 * alternate between settings, medians reported). Not a tinybench suite: each case is a
 * scenario in time (the first 3 s after start, a step change mid-run), which tinybench's
 * repeated samples cannot express.
 *
 *   cpu-heavy   ~20 µs handler, small messages: 'auto' in the first 3 s after start() vs
 *               each fixed count over the same 3 s (target ≥ 95 % of the best).
 *   main-bound  16 KiB messages, trivial handler: 'auto''s settled count vs the smallest
 *               fixed count within 5 % of the best (measured over the last seconds).
 *   step        a 3 µs handler (4 KiB messages) turns 10× heavier at 4 s: how long after
 *               the step 'auto' moved to its new count (target ≤ 3 s), and its throughput
 *               from 3 s after the step on vs each fixed count's (target ≥ 95 % of the best).
 *
 *   npm run bench:autoscale [-- --rounds 3 --threads 1,2,4 --only step --json out.json]
 */
const STEP_HANDLER = new URL('./workers/step-handler.js', import.meta.url)

interface Run {
  threads: Threads
  /** Completions per second over [fromMs, toMs] after start() resolved. */
  rate: number
  /** Lanes at the end. */
  finalThreads: number
  /** 'threads' events after the start: [ms after start, count]. */
  changes: [number, number][]
}

interface Scenario {
  name: string
  bytes: number
  costUs: number
  /** The handler's cost from stepAtMs on (none: no step). */
  stepCostUs?: number
  stepAtMs?: number
  runMs: number
  /** The window rates are measured over. */
  fromMs: number
  toMs: number
}

async function runOnce(s: Scenario, threads: Threads): Promise<Run> {
  const rounds = new Int32Array(new SharedArrayBuffer(4))
  Atomics.store(rounds, 0, roundsFor(s.costUs))
  const queue: Queue<string> = createQueue<string>({
    handler: STEP_HANDLER,
    threads,
    codec: 'string',
    workerData: { rounds: rounds.buffer },
  })
  const changes: [number, number][] = []
  let t0 = 0
  queue.on('threads', (count, reason) => {
    if (t0 === 0) return
    changes.push([Math.round(performance.now() - t0), count])
    if (process.env.AUTOSCALE_DEBUG)
      console.error(Math.round(performance.now() - t0), count, reason)
  })
  await queue.start()
  t0 = performance.now()
  const batch = Array.from({ length: 64 }, (_, i) => `${i}:`.padEnd(s.bytes, 'x'))
  let running = true
  // Ends with QUEUE_STOPPED at stop(): the refused part of its last batch is not counted.
  const producer = (async () => {
    while (running) await queue.pushMany(batch)
  })().catch(() => {})
  const completedAt = async (ms: number): Promise<number> => {
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + ms - performance.now())))
    return queue.stats().completed
  }
  if (s.stepAtMs !== undefined && s.stepCostUs !== undefined) {
    const step = s.stepAtMs
    const cost = roundsFor(s.stepCostUs)
    setTimeout(() => Atomics.store(rounds, 0, cost), Math.max(0, t0 + step - performance.now()))
  }
  const from = await completedAt(s.fromMs)
  const to = await completedAt(s.toMs)
  if (s.runMs > s.toMs) await completedAt(s.runMs)
  const finalThreads = queue.stats().threads
  running = false
  await queue.stop({ timeoutMs: 2000 })
  await producer
  return { threads, rate: ((to - from) * 1000) / (s.toMs - s.fromMs), finalThreads, changes }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function scenario(s: Scenario, rounds: number, counts: number[]) {
  const settings: Threads[] = ['auto', ...counts]
  const runs = new Map<string, Run[]>(settings.map((t) => [String(t), []]))
  for (let r = 0; r < rounds; r++) {
    // Each round starts with another setting: none always runs first (or right after another).
    const order = settings.map((_, i) => settings[(i + r) % settings.length])
    for (const t of order) runs.get(String(t))!.push(await runOnce(s, t))
  }
  const rate = (t: Threads) => median(runs.get(String(t))!.map((x) => x.rate))
  const fixed = settings.filter((t) => t !== 'auto') as number[]
  const best = Math.max(...fixed.map(rate))
  const smallestWithin5 = fixed.find((t) => rate(t) >= 0.95 * best)
  const auto = runs.get('auto')!
  return {
    scenario: s,
    rates: Object.fromEntries(settings.map((t) => [String(t), Math.round(rate(t))])),
    autoVsBest: rate('auto') / best,
    smallestWithin5,
    autoFinalThreads: auto.map((x) => x.finalThreads),
    autoChanges: auto.map((x) => x.changes),
    // ms from the step to the last change of count (the count it then kept), per round.
    autoAdaptMs:
      s.stepAtMs === undefined
        ? undefined
        : auto.map((x) => {
            const after = x.changes.filter(([ms]) => ms >= s.stepAtMs!)
            return after.length === 0 ? 0 : after[after.length - 1][0] - s.stepAtMs!
          }),
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      json: { type: 'string' },
      // The fixed counts compared with 'auto' (default: every count from 1 to the CPUs).
      threads: { type: 'string' },
      // Only the scenarios whose name contains this.
      only: { type: 'string' },
    },
  })
  const rounds = Number(values.rounds)
  const cpus = cpuCeiling().cpus
  const counts = values.threads
    ? values.threads.split(',').map(Number)
    : Array.from({ length: cpus }, (_, i) => i + 1)
  const cal = calibrate()
  const scenarios: Scenario[] = [
    { name: 'cpu-heavy', bytes: 64, costUs: 20, runMs: 3000, fromMs: 0, toMs: 3000 },
    { name: 'main-bound', bytes: 16_384, costUs: 0, runMs: 8000, fromMs: 5000, toMs: 8000 },
    {
      name: 'step',
      bytes: 4096,
      costUs: 3,
      stepCostUs: 30,
      stepAtMs: 4000,
      runMs: 9000,
      fromMs: 7000,
      toMs: 9000,
    },
  ]
  const results = []
  for (const s of scenarios) {
    if (values.only && !s.name.includes(values.only)) continue
    const result = await scenario(s, rounds, counts)
    results.push(result)
    console.log(JSON.stringify({ ...result, scenario: s.name }))
  }
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpuCeiling(),
    nsPerRound: cal.nsPerRound,
    rounds,
    results,
  }
  const out =
    values.json ?? `bench/results/autoscale-${report.date.replace(/[:.]/g, '-').slice(0, 19)}Z.json`
  mkdirSync('bench/results', { recursive: true })
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`saved ${out}`)
}

await main()
