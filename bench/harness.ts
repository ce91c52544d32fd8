import { Bench, type HookMode } from 'tinybench'

/**
 * The contract every bench suite implements.
 *
 * A suite is a name and a list of cases built for the run's context. A throughput case moves a
 * batch of messages per `run()` and resolves only once the consumer confirmed it handled all of
 * them; the harness times each run and reports messages per second = messages moved / sample
 * time. A latency case (`metric: 'latency'`) times each of its operations itself and hands every
 * duration, in µs, to the recorder `run()` receives; the harness reports their distribution.
 *
 *   export const mySuite: Suite = {
 *     name: 'my suite',
 *     cases: ({ quick }) => [
 *       { name: 'conveyor …', conveyor: true, setup, run: async () => moved, teardown },
 *       { name: 'some peer', setup, run, teardown },
 *     ],
 *   }
 *
 * Comparisons: every conveyor case is compared with the peers (non-conveyor cases) of its own
 * `group` (cases without a group form one group), plus the cases it names in `peers`. A ratio
 * above 1 always means conveyor did better: msg/s ÷ msg/s for throughput, µs ÷ µs the other way
 * round for latency.
 *
 * Register it in bench/suites/index.ts.
 */
export interface Suite {
  name: string
  /** One line shown under the suite's title. */
  description?: string
  /** Builds the cases; `quick` asks for small batches so the whole run stays short. */
  cases(ctx: BenchContext): Case[]
  /**
   * Sampling for this suite's cases, over the mode's default (QUICK_SAMPLING / FULL_SAMPLING);
   * the caller's `sampling` option still wins over both.
   */
  sampling?(ctx: BenchContext): Partial<Sampling>
  /** 'table' (default): one row per case. 'grid': one row per conveyor case, its peers as columns. */
  layout?: 'table' | 'grid'
  /**
   * Runs only when `--filter` names this suite (not in the default run, nor in --quick): for
   * suites that need something outside the machine's Node, such as a broker.
   */
  optIn?: boolean
  /** Facts about the run worth keeping (calibrations…): printed, and saved in the results. */
  info?(): Record<string, string | number> | undefined
}

export type Metric = 'throughput' | 'latency'

/** Records one operation's duration, in µs (latency cases). */
export type LatencyRecorder = (us: number) => void

/** Structured coordinates of a case, kept in the results and used by the charts. */
export interface CaseParams {
  /** Which implementation: 'conveyor', 'inline', 'piscina run()', … (also the grid's column). */
  impl?: string
  threads?: number
  /** Handler cost per message, µs of pure JS. */
  costUs?: number
  /** Message size in bytes. */
  bytes?: number
  [key: string]: string | number | undefined
}

/**
 * An acceptance target of a conveyor case, reported as met or missed (never a failure: numbers
 * on a shared machine move). With `peer`, the value is the conveyor/peer ratio (see Ratio);
 * without, the case's own median (msg/s, or µs for latency).
 */
export interface Target {
  label: string
  peer?: string
  atLeast?: number
  below?: number
}

export interface Case {
  /** Shown in the table; `--filter` matches it (and its group). Unique within its suite. */
  name: string
  /** Marks conveyor's own case(s); see Suite for what they are compared with. */
  conveyor?: boolean
  /** 'throughput' (default): run() returns messages moved. 'latency': see LatencyRecorder. */
  metric?: Metric
  /** Cases compared with each other; also what a grid row is labelled with. */
  group?: string
  /** Names of further cases (of this suite) this conveyor case is compared with. */
  peers?: string[]
  params?: CaseParams
  targets?: Target[]
  /** Starts workers, pools, buffers. Not timed. */
  setup?(): Promise<void> | void
  /**
   * One sample: resolves once all its messages were consumed, returns how many moved (latency
   * cases: how many operations were recorded).
   */
  run(record: LatencyRecorder): Promise<number>
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
  metric: Metric
  /** 'msg/s' for throughput, 'µs' for latency. */
  unit: 'msg/s' | 'µs'
  group?: string
  params?: CaseParams
  /** Timed samples (warm-up excluded). */
  samples: number
  /** Messages (latency: operations) one sample moved (the last sample's count). */
  messagesPerSample: number
  /**
   * Throughput: over the samples' msg/s. Latency: over every operation of every sample, in µs.
   */
  median: number
  p25: number
  p75: number
  min: number
  max: number
  /** Latency only: 99th percentile of the operations, µs. */
  p99?: number
  /** One value per sample: its msg/s, or (latency) its median µs. */
  values: number[]
  /** Median sample duration in ms. */
  sampleMs: number
  error?: string
}

export interface Ratio {
  conveyor: string
  peer: string
  metric: Metric
  /** Above 1: conveyor did better. msg/s ÷ peer msg/s, or peer µs ÷ conveyor µs (medians). */
  ratio: number
}

export interface TargetResult {
  case: string
  label: string
  peer?: string
  /** The ratio to the peer, or the case's own median. */
  value: number
  unit: 'x' | 'msg/s' | 'µs'
  atLeast?: number
  below?: number
  /** Undefined when it could not be measured (a case failed or was filtered out). */
  met?: boolean
}

export interface SuiteResult {
  name: string
  description?: string
  layout?: 'table' | 'grid'
  sampling?: Sampling
  info?: Record<string, string | number>
  cases: CaseResult[]
  ratios: Ratio[]
  targets: TargetResult[]
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

/** What the timed samples of one case collected, over one or more passes. */
export interface CaseSamples {
  /** One per sample: its msg/s, or (latency) its median µs. */
  values: number[]
  /** Sample durations, ms. */
  durations: number[]
  /** Latency cases: every operation, µs. */
  latencies: number[]
  /** Messages (operations) the last sample moved. */
  moved: number
  error?: string
}

export function emptySamples(): CaseSamples {
  return { values: [], durations: [], latencies: [], moved: 0 }
}

/**
 * One pass over a case: setup, tinybench warm-up and samples, teardown (always). The timed
 * samples are appended to `into`, so passes at different moments can be pooled.
 */
export async function sampleCase(c: Case, sampling: Sampling, into: CaseSamples): Promise<void> {
  const metric: Metric = c.metric ?? 'throughput'
  let current: number[] = []
  const record: LatencyRecorder = (us) => {
    current.push(us)
  }
  let recording = false
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
        current = []
        const t0 = performance.now()
        const n = await c.run(record)
        const ms = performance.now() - t0
        if (recording) {
          into.moved = n
          into.durations.push(ms)
          if (metric === 'latency') {
            if (current.length === 0) throw new Error('a latency case recorded no operation')
            for (const us of current) into.latencies.push(us)
            into.values.push(
              percentile(
                current.sort((a, b) => a - b),
                0.5,
              ),
            )
          } else into.values.push((n * 1000) / ms)
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
  } catch (err) {
    into.error ??= err instanceof Error ? (err.stack ?? err.message) : String(err)
  } finally {
    // Always, even after a failed setup: teardowns must cope with a half-built case.
    try {
      await c.teardown?.()
    } catch (err) {
      into.error ??= `teardown: ${err instanceof Error ? err.message : String(err)}`
    }
  }
}

/** A case's result from its pooled samples. */
export function summarize(c: Case, samples: CaseSamples): CaseResult {
  const metric: Metric = c.metric ?? 'throughput'
  const dist = metric === 'latency' ? [...samples.latencies] : [...samples.values]
  dist.sort((a, b) => a - b)
  const durations = [...samples.durations].sort((a, b) => a - b)
  const result: CaseResult = {
    name: c.name,
    conveyor: c.conveyor === true,
    metric,
    unit: metric === 'latency' ? 'µs' : 'msg/s',
    group: c.group,
    params: c.params,
    samples: samples.values.length,
    messagesPerSample: samples.moved,
    median: percentile(dist, 0.5),
    p25: percentile(dist, 0.25),
    p75: percentile(dist, 0.75),
    min: dist[0] ?? Number.NaN,
    max: dist[dist.length - 1] ?? Number.NaN,
    values: samples.values,
    sampleMs: percentile(durations, 0.5),
  }
  if (metric === 'latency') result.p99 = percentile(dist, 0.99)
  if (samples.error) result.error = samples.error
  return result
}

/** Runs one case in one pass. */
export async function runCase(c: Case, sampling: Sampling): Promise<CaseResult> {
  const samples = emptySamples()
  await sampleCase(c, sampling, samples)
  return summarize(c, samples)
}

/**
 * Runs the cases of one suite in two passes, forward then backward (A B … B A), each with
 * half the samples, and pools each case's samples. On a machine whose speed drifts over
 * seconds, every case then gets samples from both ends of the run: a slow stretch no longer
 * lands on one peer only, and the ratios between peers stay fair.
 */
export async function runCasesInterleaved(
  cases: Case[],
  sampling: Sampling,
): Promise<CaseResult[]> {
  const half: Sampling = {
    ...sampling,
    iterations: Math.max(2, Math.ceil(sampling.iterations / 2)),
    time: sampling.time / 2,
  }
  const pooled = cases.map(() => emptySamples())
  const forward = cases.map((_, i) => i)
  for (const order of [forward, [...forward].reverse()]) {
    for (const i of order) {
      if (!pooled[i].error) await sampleCase(cases[i], half, pooled[i])
    }
  }
  return cases.map((c, i) => summarize(c, pooled[i]))
}

/** conveyor vs peer as a "higher is better for conveyor" ratio of medians. */
function ratioOf(ref: CaseResult, peer: CaseResult): number {
  return ref.metric === 'latency' ? peer.median / ref.median : ref.median / peer.median
}

/**
 * Every conveyor case against the peers of its group and the peers it names (same metric,
 * both measured). Cases given without `peers` (older callers) compare by group only.
 */
export function ratiosOf(
  cases: CaseResult[],
  declared: Pick<Case, 'name' | 'peers'>[] = [],
): Ratio[] {
  const named = new Map(declared.map((c) => [c.name, c.peers ?? []]))
  const ok = (c: CaseResult) => !c.error && c.median > 0
  const ratios: Ratio[] = []
  for (const ref of cases) {
    if (!ref.conveyor || !ok(ref)) continue
    const extra = named.get(ref.name) ?? []
    for (const peer of cases) {
      if (peer.conveyor || !ok(peer) || peer.metric !== ref.metric) continue
      if (peer.group !== ref.group && !extra.includes(peer.name)) continue
      ratios.push({
        conveyor: ref.name,
        peer: peer.name,
        metric: ref.metric,
        ratio: ratioOf(ref, peer),
      })
    }
  }
  return ratios
}

/** Judges every target of the given cases against the results. */
export function targetsOf(
  cases: CaseResult[],
  declared: Pick<Case, 'name' | 'targets'>[],
): TargetResult[] {
  const byName = new Map(cases.map((c) => [c.name, c]))
  const out: TargetResult[] = []
  for (const d of declared) {
    const c = byName.get(d.name)
    if (!c) continue
    for (const t of d.targets ?? []) {
      const peer = t.peer === undefined ? undefined : byName.get(t.peer)
      const measurable = !c.error && (t.peer === undefined || (peer !== undefined && !peer.error))
      const value = !measurable ? Number.NaN : peer ? ratioOf(c, peer) : c.median
      const met = Number.isFinite(value)
        ? (t.atLeast === undefined || value >= t.atLeast) &&
          (t.below === undefined || value < t.below)
        : undefined
      out.push({
        case: c.name,
        label: t.label,
        peer: t.peer,
        value,
        unit: t.peer !== undefined ? 'x' : c.unit,
        atLeast: t.atLeast,
        below: t.below,
        met,
      })
    }
  }
  return out
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return '-'
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M`
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`
  return perSecond.toFixed(0)
}

export function formatMicros(us: number): string {
  if (!Number.isFinite(us)) return '-'
  if (us >= 1000) return `${(us / 1000).toFixed(2)}ms`
  return us >= 100 ? `${us.toFixed(0)}µs` : `${us.toFixed(1)}µs`
}

export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '-'
  if (ratio >= 100) return `${ratio.toFixed(0)}x`
  return ratio >= 0.1 ? `${ratio.toFixed(2)}x` : `${ratio.toPrecision(2)}x`
}

function formatValue(c: Pick<CaseResult, 'metric'>, v: number): string {
  return c.metric === 'latency' ? formatMicros(v) : formatRate(v)
}

/** Lays out rows under a header: the first column left-aligned, the others right-aligned. */
function columns(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)]
}

function caseTable(cases: CaseResult[], ratios: Ratio[], metric: Metric): string[] {
  const latency = metric === 'latency'
  // A peer compared with exactly one conveyor case shows its ratio in the row; others below.
  const ratiosFor = new Map<string, Ratio[]>()
  for (const r of ratios) ratiosFor.set(r.peer, [...(ratiosFor.get(r.peer) ?? []), r])
  const header = latency
    ? ['case', 'µs median', 'p25..p75', 'p99', 'min..max', 'samples', 'ops/sample', 'peer/conveyor']
    : [
        'case',
        'msg/s median',
        'p25..p75',
        'min..max',
        'samples',
        'msgs/sample',
        'ms/sample',
        'conveyor/peer',
      ]
  const ratioCell = (c: CaseResult) => {
    if (c.conveyor) return '(ref)'
    const rs = ratiosFor.get(c.name) ?? []
    if (rs.length === 0) return '-'
    return rs.length === 1 ? formatRatio(rs[0].ratio) : 'see below'
  }
  const rows = cases.map((c) => {
    if (c.error) return [c.name, 'FAILED', '', '', '', '', '', '-']
    const f = (v: number) => formatValue(c, v)
    return latency
      ? [
          c.name,
          f(c.median),
          `${f(c.p25)}..${f(c.p75)}`,
          f(c.p99 ?? Number.NaN),
          `${f(c.min)}..${f(c.max)}`,
          String(c.samples),
          String(c.messagesPerSample),
          ratioCell(c),
        ]
      : [
          c.name,
          f(c.median),
          `${f(c.p25)}..${f(c.p75)}`,
          `${f(c.min)}..${f(c.max)}`,
          String(c.samples),
          String(c.messagesPerSample),
          c.sampleMs.toFixed(1),
          ratioCell(c),
        ]
  })
  return columns(header, rows)
}

/** One row per conveyor case (labelled by its group), its peers' medians and ratios as columns. */
function grid(suite: SuiteResult): string[] {
  const byName = new Map(suite.cases.map((c) => [c.name, c]))
  const refs = suite.cases.filter((c) => c.conveyor)
  const impl = (c: CaseResult) => c.params?.impl ?? c.name
  const peerColumns: string[] = []
  const peersOf = new Map<string, CaseResult[]>()
  for (const ref of refs) {
    const rs = suite.ratios.filter((r) => r.conveyor === ref.name)
    const peers = suite.cases.filter(
      (c) => !c.conveyor && (c.group === ref.group || rs.some((r) => r.peer === c.name)),
    )
    peersOf.set(ref.name, peers)
    for (const p of peers) if (!peerColumns.includes(impl(p))) peerColumns.push(impl(p))
  }
  const header = ['cell', 'conveyor', ...peerColumns]
  const rows = refs.map((ref) => {
    const cells = [ref.group ?? ref.name, ref.error ? 'FAILED' : formatValue(ref, ref.median)]
    for (const col of peerColumns) {
      const peer = peersOf.get(ref.name)?.find((p) => impl(p) === col)
      if (!peer) cells.push('')
      else if (peer.error) cells.push('FAILED')
      else {
        const r = suite.ratios.find((x) => x.conveyor === ref.name && x.peer === peer.name)
        cells.push(`${formatValue(peer, peer.median)} (${r ? formatRatio(r.ratio) : '-'})`)
      }
    }
    return cells
  })
  // Peers no conveyor case of the grid shows (its conveyor case was filtered out).
  const shown = new Set([...peersOf.values()].flat().map((p) => p.name))
  const orphans = suite.cases.filter((c) => !c.conveyor && !shown.has(c.name) && byName.has(c.name))
  const out = rows.length > 0 ? columns(header, rows) : []
  if (rows.length > 0) out.push('(each peer: its median, then conveyor/peer in parentheses)')
  for (const o of orphans) {
    out.push(`  ${o.name}: ${o.error ? 'FAILED' : `${formatValue(o, o.median)} ${o.unit}`}`)
  }
  return out
}

function formatTarget(t: TargetResult, quick: boolean): string {
  const bound = [
    t.atLeast !== undefined ? `≥ ${t.unit === 'x' ? formatRatio(t.atLeast) : t.atLeast}` : '',
    t.below !== undefined ? `< ${t.unit === 'µs' ? formatMicros(t.below) : t.below}` : '',
  ]
    .filter(Boolean)
    .join(' and ')
  const value =
    t.unit === 'x'
      ? formatRatio(t.value)
      : t.unit === 'µs'
        ? formatMicros(t.value)
        : formatRate(t.value)
  // A --quick run's samples are too small and too cold to judge a target by.
  const missed = quick ? 'not reached (quick run: indicative only)' : 'MISSED'
  const verdict = t.met === undefined ? 'not measured' : t.met ? 'met' : missed
  return `  target ${t.label}: ${value} (${bound}) ${verdict}`
}

/** The suite's result as text: a table per metric (or the grid), ratio lines, targets. */
export function formatSuite(suite: SuiteResult, options: { quick?: boolean } = {}): string {
  const out = [`== ${suite.name}`]
  if (suite.description) out.push(suite.description)
  for (const [k, v] of Object.entries(suite.info ?? {})) out.push(`  ${k}: ${v}`)
  if (suite.layout === 'grid') {
    out.push(...grid(suite))
  } else {
    const metrics = (['throughput', 'latency'] as const).filter((m) =>
      suite.cases.some((c) => c.metric === m),
    )
    for (const m of metrics) {
      if (metrics.length > 1) {
        out.push(m === 'latency' ? '-- latency (µs, lower is better)' : '-- throughput (msg/s)')
      }
      const cases = suite.cases.filter((c) => c.metric === m)
      out.push(...caseTable(cases, suite.ratios, m))
    }
    for (const r of suite.ratios) {
      out.push(
        r.metric === 'latency'
          ? `  ${r.peer} µs / ${r.conveyor} µs: ${formatRatio(r.ratio)}`
          : `  ${r.conveyor} / ${r.peer}: ${formatRatio(r.ratio)}`,
      )
    }
  }
  for (const t of suite.targets) out.push(formatTarget(t, options.quick === true))
  for (const c of suite.cases) {
    if (c.error) out.push(`  ${c.name} failed: ${c.error}`)
  }
  return out.join('\n')
}
