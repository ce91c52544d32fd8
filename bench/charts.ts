import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import type { CaseResult, SuiteResult } from './harness.js'
import type { BenchReport } from './main.js'

/**
 * The run's charts, as vega-lite specs rendered to SVG on Node (no canvas, no browser):
 *  - throughput-vs-threads: conveyor and its peers against the thread count, for one handler
 *    cost (the queue suite's 20 µs cells when they ran, else a matrix cost);
 *  - speedup-vs-cost: conveyor ÷ Piscina run() msg/s against the handler cost, one line per
 *    message size and thread count (the matrix).
 * A chart whose data did not run (filtered out, failed) is left out.
 */
export interface Chart {
  /** File-name part: `<stamp>.<name>.svg`. */
  name: string
  spec: TopLevelSpec
  svg: string
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json'
const WIDTH = 520
const HEIGHT = 320

interface Point {
  suite: string
  impl: string
  threads: number
  costUs: number
  bytes: number
  median: number
  p25: number
  p75: number
}

function sizeText(bytes: number): string {
  return bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`
}

function pointOf(suite: SuiteResult, c: CaseResult): Point | undefined {
  const p = c.params
  if (c.error || c.metric !== 'throughput' || !p || !(c.median > 0)) return undefined
  if (typeof p.impl !== 'string' || typeof p.threads !== 'number') return undefined
  if (typeof p.costUs !== 'number' || typeof p.bytes !== 'number') return undefined
  return {
    suite: suite.name,
    impl: p.impl,
    threads: p.threads,
    costUs: p.costUs,
    bytes: p.bytes,
    median: c.median,
    p25: c.p25,
    p75: c.p75,
  }
}

function subtitle(report: BenchReport): string {
  const m = report.machine
  return `${m.cpu}, ${m.cpus} cpus, node ${m.node}, ${report.date.slice(0, 16).replace('T', ' ')} UTC${report.quick ? ', --quick (indicative only)' : ''}`
}

/** Throughput against threads for the (suite, cost, size) with the most conveyor thread counts. */
export function throughputVsThreads(report: BenchReport): TopLevelSpec | undefined {
  const points = report.suites.flatMap((s) =>
    s.cases.map((c) => pointOf(s, c)).filter((p): p is Point => p !== undefined),
  )
  const keyOf = (p: Point) => `${p.suite}|${p.costUs}|${p.bytes}`
  let best: { key: string; score: number } | undefined
  for (const key of new Set(points.map(keyOf))) {
    const pts = points.filter((p) => keyOf(p) === key)
    const threads = new Set(pts.filter((p) => p.impl === 'conveyor').map((p) => p.threads))
    const peers = pts.some((p) => p.impl !== 'conveyor')
    if (threads.size === 0 || !peers) continue
    const [suite, cost, bytes] = key.split('|')
    const score =
      threads.size * 100 +
      (suite === 'queue' ? 10 : 0) +
      (cost === '10' ? 5 : 0) +
      (bytes === '1024' ? 2 : 0)
    if (!best || score > best.score) best = { key, score }
  }
  if (!best) return undefined
  const chosen = points.filter((p) => keyOf(p) === best.key)
  const xs = [...new Set(chosen.filter((p) => p.impl !== 'inline').map((p) => p.threads))].sort(
    (a, b) => a - b,
  )
  // The one-thread baseline is drawn flat across the thread counts.
  const values = chosen.flatMap((p) =>
    p.impl === 'inline'
      ? xs.map((threads) => ({ ...p, impl: 'inline (1 thread)', threads }))
      : [{ ...p }],
  )
  const impls = [...new Set(values.map((v) => v.impl))]
  const { costUs, bytes, suite } = chosen[0]
  // Peers orders of magnitude apart (an empty handler inline) need a log scale to be seen.
  const medians = values.map((v) => v.median)
  const log = Math.max(...medians) / Math.min(...medians) > 50
  const x = {
    field: 'threads',
    type: 'quantitative' as const,
    title: 'worker threads',
    scale: { domain: [Math.min(...xs), Math.max(...xs)] },
    axis: { values: xs, format: 'd' },
  }
  const color = { field: 'impl', type: 'nominal' as const, title: null, sort: impls }
  return {
    $schema: SCHEMA,
    title: {
      text: `Throughput vs threads: handler ${costUs} µs, ${sizeText(bytes)} messages (${suite})`,
      subtitle: subtitle(report),
    },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    config: { legend: { symbolType: 'stroke', symbolStrokeWidth: 2 } },
    data: { values },
    layer: [
      {
        mark: { type: 'rule', opacity: 0.5 },
        encoding: {
          x,
          y: { field: 'p25', type: 'quantitative', scale: log ? { type: 'log' } : { zero: true } },
          y2: { field: 'p75' },
          color,
        },
      },
      {
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: {
            field: 'median',
            type: 'quantitative',
            title: 'messages / second (median; bars: p25..p75)',
            axis: { format: '~s' },
            scale: log ? { type: 'log' } : { zero: true },
          },
          color,
          strokeDash: {
            condition: { test: "indexof(datum.impl, 'inline') === 0", value: [6, 4] },
            value: [1, 0],
          },
          tooltip: [{ field: 'impl' }, { field: 'threads' }, { field: 'median', format: '.4~s' }],
        },
      },
    ],
  }
}

/** conveyor ÷ Piscina run() against the handler cost, from the cells that have both. */
export function speedupVsCost(report: BenchReport): TopLevelSpec | undefined {
  type Row = { suite: string; costUs: number; bytes: number; threads: number; speedup: number }
  const rows: Row[] = []
  for (const s of report.suites) {
    const byName = new Map(s.cases.map((c) => [c.name, c]))
    for (const r of s.ratios) {
      const ref = byName.get(r.conveyor)
      const peer = byName.get(r.peer)
      if (r.metric !== 'throughput' || !ref || !peer) continue
      if (ref.params?.impl !== 'conveyor' || peer.params?.impl !== 'piscina run()') continue
      const { costUs, bytes, threads } = ref.params
      if (typeof costUs !== 'number' || typeof bytes !== 'number' || typeof threads !== 'number')
        continue
      rows.push({ suite: s.name, costUs, bytes, threads, speedup: r.ratio })
    }
  }
  // Prefer the suites that vary the cost (the matrix); a single cost is a lone dot.
  const varied = [...new Set(rows.map((r) => r.suite))].filter(
    (suite) => new Set(rows.filter((r) => r.suite === suite).map((r) => r.costUs)).size > 1,
  )
  const used = varied.length > 0 ? rows.filter((r) => varied.includes(r.suite)) : rows
  if (used.length === 0) return undefined
  const values = used.map((r) => ({
    ...r,
    cost: `${r.costUs} µs`,
    size: sizeText(r.bytes),
    threadsLabel: `${r.threads} thread${r.threads === 1 ? '' : 's'}`,
  }))
  const costs = [...new Set(values.map((v) => v.costUs))]
    .sort((a, b) => a - b)
    .map((c) => `${c} µs`)
  const sizes = [...new Set(values.map((v) => v.bytes))].sort((a, b) => a - b).map(sizeText)
  const threads = [...new Set(values.map((v) => v.threads))]
    .sort((a, b) => a - b)
    .map((t) => `${t} thread${t === 1 ? '' : 's'}`)
  return {
    $schema: SCHEMA,
    title: {
      text: 'Speedup of conveyor over Piscina run() per message, by handler cost',
      subtitle: subtitle(report),
    },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    config: { legend: { symbolType: 'stroke', symbolStrokeWidth: 2 } },
    layer: [
      {
        data: { values },
        mark: { type: 'line', point: true },
        encoding: {
          x: {
            field: 'cost',
            type: 'ordinal',
            sort: costs,
            title: 'handler cost (µs of pure JS per message)',
            axis: { labelAngle: 0 },
          },
          y: {
            field: 'speedup',
            type: 'quantitative',
            scale: { type: 'log' },
            title: 'conveyor ÷ Piscina run() (msg/s, medians)',
          },
          color: { field: 'size', type: 'nominal', sort: sizes, title: 'message' },
          strokeDash: {
            field: 'threadsLabel',
            type: 'nominal',
            sort: threads,
            title: 'threads',
            scale: {
              range: [
                [1, 0],
                [8, 4],
                [2, 3],
                [10, 3, 2, 3],
                [4, 6],
                [1, 6],
              ],
            },
            // With points on the lines the legend draws filled dots: ask for dashed strokes.
            legend: { encoding: { symbols: { fill: { value: 'transparent' } } } },
          },
          tooltip: [
            { field: 'cost' },
            { field: 'size' },
            { field: 'threadsLabel', title: 'threads' },
            { field: 'speedup', format: '.3~f' },
          ],
        },
      },
      {
        data: { values: [{ y: 1 }] },
        mark: { type: 'rule', color: 'gray', strokeDash: [2, 2] },
        encoding: { y: { field: 'y', type: 'quantitative' } },
      },
    ],
  }
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Errors only: vega-lite warns about legend settings it merges as asked (the dash legend).
  const logger = vega.logger(vega.Error)
  const view = new vega.View(vega.parse(compile(spec, { logger }).spec), {
    renderer: 'none',
    logger,
  })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

export async function renderCharts(report: BenchReport): Promise<Chart[]> {
  const specs: [string, TopLevelSpec | undefined][] = [
    ['throughput-vs-threads', throughputVsThreads(report)],
    ['speedup-vs-cost', speedupVsCost(report)],
  ]
  const charts: Chart[] = []
  for (const [name, spec] of specs) {
    if (spec) charts.push({ name, spec, svg: await renderSvg(spec) })
  }
  return charts
}
