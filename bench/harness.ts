import { Bench, type HookMode } from 'tinybench'

/**
 * The contract every bench suite implements.
 *
 * A suite is a name and a list of cases built for the run's context. A case moves a fixed batch
 * of messages per `run()` and resolves only once the consumer confirmed it handled all of them;
 * the harness times each run and reports messages per second = messages moved / sample time.
 *
 *   export const mySuite: Suite = {
 *     name: 'my suite',
 *     cases: ({ quick }) => [
 *       { name: 'conveyor …', conveyor: true, setup, run: async () => moved, teardown },
 *       { name: 'some peer', setup, run, teardown },
 *     ],
 *   }
 *
 * Register it in bench/suites/index.ts.
 */
export interface Suite {
  name: string
  /** One line shown under the suite's title. */
  description?: string
  /** Builds the cases; `quick` asks for small batches so the whole run stays short. */
  cases(ctx: BenchContext): Case[]
}

export interface Case {
  /** Shown in the table; `--filter` matches it. */
  name: string
  /** Marks conveyor's own case(s). Each peer is reported as a ratio to the first of them. */
  conveyor?: boolean
  /** Starts workers, pools, buffers. Not timed. */
  setup?(): Promise<void> | void
  /** Moves one sample's messages, resolves once all were consumed, returns how many moved. */
  run(): Promise<number>
  /**
   * Releases everything setup made; must leave nothing that keeps the process alive. Runs even
   * when setup threw, so it must cope with a half-built case.
   */
  teardown?(): Promise<void> | void
}

export interface BenchContext {
  quick: boolean
}

/** How many samples to take per case (tinybench semantics: minimum count *and* time budget). */
export interface Sampling {
  warmupIterations: number
  warmupTime: number
  iterations: number
  time: number
}

export const QUICK_SAMPLING: Sampling = {
  warmupIterations: 2,
  warmupTime: 0,
  iterations: 5,
  time: 0,
}
export const FULL_SAMPLING: Sampling = {
  warmupIterations: 3,
  warmupTime: 500,
  iterations: 10,
  time: 2000,
}

export interface CaseResult {
  name: string
  conveyor: boolean
  /** Timed samples (warm-up excluded). */
  samples: number
  /** Messages one sample moved (the last sample's count). */
  messagesPerSample: number
  /** Messages per second over the samples. */
  median: number
  p25: number
  p75: number
  min: number
  max: number
  /** Median sample duration in ms. */
  sampleMs: number
  error?: string
}

export interface Ratio {
  conveyor: string
  peer: string
  /** conveyor msg/s ÷ peer msg/s (medians). */
  ratio: number
}

export interface SuiteResult {
  name: string
  description?: string
  cases: CaseResult[]
  ratios: Ratio[]
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

/** Runs one case: setup, tinybench warm-up and samples, teardown (always). */
export async function runCase(c: Case, sampling: Sampling): Promise<CaseResult> {
  const rates: number[] = []
  const durations: number[] = []
  let moved = 0
  let recording = false
  const result: CaseResult = {
    name: c.name,
    conveyor: c.conveyor === true,
    samples: 0,
    messagesPerSample: 0,
    median: Number.NaN,
    p25: Number.NaN,
    p75: Number.NaN,
    min: Number.NaN,
    max: Number.NaN,
    sampleMs: Number.NaN,
  }
  try {
    await c.setup?.()
    const bench = new Bench({
      name: c.name,
      throws: true,
      warmup: sampling.warmupIterations > 0,
      warmupIterations: sampling.warmupIterations,
      warmupTime: sampling.warmupTime,
      iterations: sampling.iterations,
      time: sampling.time,
    })
    bench.add(
      c.name,
      async () => {
        const t0 = performance.now()
        const n = await c.run()
        const ms = performance.now() - t0
        if (recording) {
          moved = n
          rates.push((n * 1000) / ms)
          durations.push(ms)
        }
        return { overriddenDuration: ms }
      },
      {
        async: true,
        beforeAll(mode?: HookMode) {
          recording = mode === 'run'
        },
      },
    )
    await bench.run()
    rates.sort((a, b) => a - b)
    durations.sort((a, b) => a - b)
    result.samples = rates.length
    result.messagesPerSample = moved
    result.median = percentile(rates, 0.5)
    result.p25 = percentile(rates, 0.25)
    result.p75 = percentile(rates, 0.75)
    result.min = rates[0] ?? Number.NaN
    result.max = rates[rates.length - 1] ?? Number.NaN
    result.sampleMs = percentile(durations, 0.5)
  } catch (err) {
    result.error = err instanceof Error ? (err.stack ?? err.message) : String(err)
  } finally {
    // Always, even after a failed setup: teardowns must cope with a half-built case.
    try {
      await c.teardown?.()
    } catch (err) {
      result.error ??= `teardown: ${err instanceof Error ? err.message : String(err)}`
    }
  }
  return result
}

/** Ratios of the first conveyor case to every peer that produced a number. */
export function ratiosOf(cases: CaseResult[]): Ratio[] {
  const ref = cases.find((c) => c.conveyor && !c.error)
  if (!ref) return []
  return cases
    .filter((c) => !c.conveyor && !c.error && c.median > 0)
    .map((c) => ({ conveyor: ref.name, peer: c.name, ratio: ref.median / c.median }))
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-'
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`
  return perSecond.toFixed(0)
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-'
  return ratio >= 100 ? `${ratio.toFixed(0)}x` : `${ratio.toFixed(2)}x`
}

/** The suite's result as a text table, one row per case, plus the ratio lines. */
export function formatSuite(suite: SuiteResult): string {
  const ratioFor = new Map(suite.ratios.map((r) => [r.peer, r.ratio]))
  const header = [
    'case',
    'msg/s median',
    'p25..p75',
    'min..max',
    'samples',
    'msgs/sample',
    'ms/sample',
    'conveyor/peer',
  ]
  const rows = suite.cases.map((c) =>
    c.error
      ? [c.name, 'FAILED', '', '', '', '', '', '-']
      : [
          c.name,
          formatRate(c.median),
          `${formatRate(c.p25)}..${formatRate(c.p75)}`,
          `${formatRate(c.min)}..${formatRate(c.max)}`,
          String(c.samples),
          String(c.messagesPerSample),
          c.sampleMs.toFixed(1),
          c.conveyor ? '(ref)' : formatRatio(ratioFor.get(c.name) ?? Number.NaN),
        ],
  )
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd()
  const out = [`== ${suite.name}`]
  if (suite.description) out.push(suite.description)
  out.push(line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line))
  for (const r of suite.ratios) {
    out.push(`  ${r.conveyor} / ${r.peer}: ${formatRatio(r.ratio)}`)
  }
  for (const c of suite.cases) {
    if (c.error) out.push(`  ${c.name} failed: ${c.error}`)
  }
  return out.join('\n')
}
