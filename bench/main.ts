import { realpathSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  FULL_SAMPLING,
  formatSuite,
  QUICK_SAMPLING,
  ratiosOf,
  runCasesInterleaved,
  type Sampling,
  type Suite,
  type SuiteResult,
  targetsOf,
} from './harness.js'
import { suites as registered } from './suites/index.js'
import { calibrate } from './support/work.js'

export interface BenchOptions {
  /** Small batches and few samples: the whole run stays well under a minute (CI smoke). */
  quick?: boolean
  /** Only suites, or cases, whose name (or group) contains this (case-insensitive). */
  filter?: string
  /** Also write the results as JSON to this path. */
  json?: string
  /**
   * Write `<resultsDir>/<date-time>.json` and its SVG charts. Default false here; the command
   * line saves unless --no-save.
   */
  save?: boolean
  /** Where saved results go. Default bench/results/ (bench/results/quick/ with `quick`). */
  resultsDir?: string
  /** Suites to run instead of the registered ones. */
  suites?: Suite[]
  /** Overrides the sample counts/time budgets of the chosen mode (and of every suite). */
  sampling?: Partial<Sampling>
  /** Where output lines go; default console.log. Pass () => {} for silence. */
  log?: (line: string) => void
}

export interface Machine {
  /** CPU model. */
  cpu: string
  /** Logical CPUs (os.cpus()). */
  cpus: number
  /** What Node may use (os.availableParallelism()): the default thread count. */
  availableParallelism: number
  memoryGiB: number
  node: string
  v8: string
  /** e.g. 'Linux 6.1.0-18-amd64'. */
  os: string
  platform: string
  arch: string
  /** 1, 5 and 15 minute load averages when the run started (other work on the machine). */
  loadavg: number[]
}

export interface BenchReport {
  /** When the run started (ISO 8601). */
  date: string
  machine: Machine
  /** How the run was asked for. */
  options: { quick: boolean; filter?: string; save: boolean; json?: string }
  quick: boolean
  filter?: string
  /** The mode's sampling (each suite's own is in its result). */
  sampling: Sampling
  suites: SuiteResult[]
  /** True when any case failed (or the results could not be written). */
  failed: boolean
  /** Files this run wrote, relative to the package root. */
  files: string[]
}

/** The package root (this file runs as dist/bench/main.js). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEFAULT_RESULTS = join(ROOT, 'bench', 'results')

export function machineInfo(): Machine {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    v8: process.versions.v8,
    os: `${os.type()} ${os.release()}`,
    platform: process.platform,
    arch: process.arch,
    loadavg: os.loadavg().map((l) => Math.round(l * 100) / 100),
  }
}

export function machineLine(m: Machine = machineInfo()): string {
  return `machine: ${m.cpu}, ${m.cpus} cpus, node ${m.node} (${m.os}, ${m.platform}/${m.arch}), load ${m.loadavg.join(' ')}`
}

/** `path` relative to `from` when it lies inside it, else as it is. */
function shortPath(path: string, from: string): string {
  const rel = relative(from, path)
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel
}

/** A file-name-safe ISO 8601 date-time: 2026-11-25T12-40-05Z (colons are not portable). */
export function fileStamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '-')
}

/** Runs the suites (each case: setup, warm-up, samples, teardown) and prints one table per suite. */
export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const quick = options.quick === true
  const log = options.log ?? ((line: string) => console.log(line))
  const filter = options.filter?.toLowerCase()
  const modeSampling = quick ? QUICK_SAMPLING : FULL_SAMPLING
  const started = new Date()
  const report: BenchReport = {
    date: started.toISOString(),
    machine: machineInfo(),
    options: { quick, filter: options.filter, save: options.save === true, json: options.json },
    quick,
    filter: options.filter,
    sampling: { ...modeSampling, ...options.sampling },
    suites: [],
    failed: false,
    files: [],
  }
  log(machineLine(report.machine))
  // Calibrate the synthetic handler cost first, on a quiet process: after a suite has torn its
  // workers down the main thread can run slow for a while and skew every cost that follows.
  calibrate()
  if (quick) log('mode: --quick (small batches, few samples: numbers are indicative only)')

  for (const suite of options.suites ?? registered) {
    const suiteMatches = !filter || suite.name.toLowerCase().includes(filter)
    // An opt-in suite (a broker it needs) runs only when the filter names it.
    if (suite.optIn && !(filter && suite.name.toLowerCase().includes(filter))) continue
    const all = suite.cases({ quick })
    const matches = (c: (typeof all)[number]) =>
      suiteMatches || `${c.group ?? ''}\n${c.name}`.toLowerCase().includes(filter ?? '')
    // A chosen case brings the peers it names, so its ratios still have something to compare.
    const wanted = new Set(all.filter(matches).flatMap((c) => [c.name, ...(c.peers ?? [])]))
    const cases = all.filter((c) => wanted.has(c.name))
    if (cases.length === 0) continue
    const sampling: Sampling = {
      ...modeSampling,
      ...suite.sampling?.({ quick }),
      ...options.sampling,
    }
    const result: SuiteResult = {
      name: suite.name,
      description: suite.description,
      layout: suite.layout,
      sampling,
      cases: [],
      ratios: [],
      targets: [],
    }
    result.cases = await runCasesInterleaved(cases, sampling)
    if (result.cases.some((r) => r.error)) report.failed = true
    result.info = suite.info?.()
    result.ratios = ratiosOf(result.cases, cases)
    result.targets = targetsOf(result.cases, cases)
    report.suites.push(result)
    log('')
    log(formatSuite(result, { quick }))
  }
  if (report.suites.length === 0) log(`no suite or case matches --filter ${options.filter}`)

  try {
    const outputs: { path: string; body: () => string }[] = []
    const json = () => `${JSON.stringify(report, null, 2)}\n`
    if (options.save && report.suites.length > 0) {
      const dir = resolve(
        options.resultsDir ?? (quick ? join(DEFAULT_RESULTS, 'quick') : DEFAULT_RESULTS),
      )
      const stamp = fileStamp(started)
      // vega loads only when something is saved.
      const { renderCharts } = await import('./charts.js')
      const charts = await renderCharts(report)
      outputs.push({ path: join(dir, `${stamp}.json`), body: json })
      for (const chart of charts) {
        outputs.push({ path: join(dir, `${stamp}.${chart.name}.svg`), body: () => chart.svg })
      }
    }
    if (options.json) outputs.push({ path: resolve(options.json), body: json })
    // Paths from the package root, so a saved report names its charts the same on any machine.
    report.files = outputs.map((t) => shortPath(t.path, ROOT))
    for (const t of outputs) {
      await mkdir(dirname(t.path), { recursive: true })
      await writeFile(t.path, t.body())
    }
    if (outputs.length > 0) log('')
    for (const t of outputs) log(`wrote ${shortPath(t.path, process.cwd())}`)
  } catch (err) {
    report.failed = true
    log(
      `\ncould not write the results: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
    )
  }
  return report
}

export const USAGE =
  'usage: node dist/bench/main.js [--quick] [--filter <substring>] [--json <path>] [--no-save]'

/**
 * The command line (also `conveyor bench …`): returns the exit code, 0 done, 1 a case failed,
 * 2 bad arguments.
 */
export async function benchCli(argv: string[]): Promise<number> {
  let values: {
    quick?: boolean
    filter?: string
    json?: string
    'no-save'?: boolean
    help?: boolean
  }
  try {
    ;({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        filter: { type: 'string' },
        json: { type: 'string' },
        'no-save': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }))
  } catch (err) {
    console.error(`bench: ${err instanceof Error ? err.message : String(err)}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const report = await runBench({
    quick: values.quick,
    filter: values.filter,
    json: values.json,
    save: !values['no-save'],
  })
  return report.failed ? 1 : 0
}

function isMain(): boolean {
  const entry = process.argv[1]
  if (!entry) return false
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

if (isMain()) {
  // No process.exit: every case tears its workers down, so the process ends by itself.
  process.exitCode = await benchCli(process.argv.slice(2))
}
