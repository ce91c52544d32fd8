import { realpathSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  FULL_SAMPLING,
  formatSuite,
  QUICK_SAMPLING,
  ratiosOf,
  runCase,
  type Sampling,
  type Suite,
  type SuiteResult,
} from './harness.js'
import { suites as registered } from './suites/index.js'

export interface BenchOptions {
  /** Small batches and few samples: the whole run stays well under a minute (CI smoke). */
  quick?: boolean
  /** Only suites, or cases, whose name contains this (case-insensitive). */
  filter?: string
  /** Also write the results as JSON to this path. */
  json?: string
  /** Suites to run instead of the registered ones. */
  suites?: Suite[]
  /** Overrides the sample counts/time budgets of the chosen mode. */
  sampling?: Partial<Sampling>
  /** Where output lines go; default console.log. Pass () => {} for silence. */
  log?: (line: string) => void
}

export interface BenchReport {
  machine: { cpu: string; cpus: number; node: string; platform: string; arch: string }
  quick: boolean
  filter?: string
  sampling: Sampling
  suites: SuiteResult[]
  /** True when any case failed. */
  failed: boolean
}

export function machineLine(): string {
  const cpus = os.cpus()
  return `machine: ${cpus[0]?.model.trim() ?? 'unknown cpu'}, ${cpus.length} cpus, node ${process.version} (${process.platform}/${process.arch})`
}

/** Runs the suites (each case: setup, warm-up, samples, teardown) and prints one table per suite. */
export async function runBench(options: BenchOptions = {}): Promise<BenchReport> {
  const quick = options.quick === true
  const log = options.log ?? ((line: string) => console.log(line))
  const filter = options.filter?.toLowerCase()
  const sampling: Sampling = { ...(quick ? QUICK_SAMPLING : FULL_SAMPLING), ...options.sampling }
  const cpus = os.cpus()
  const report: BenchReport = {
    machine: {
      cpu: cpus[0]?.model.trim() ?? 'unknown',
      cpus: cpus.length,
      node: process.version,
      platform: process.platform,
      arch: process.arch,
    },
    quick,
    filter: options.filter,
    sampling,
    suites: [],
    failed: false,
  }
  log(machineLine())
  if (quick) log('mode: --quick (small batches, few samples: numbers are indicative only)')

  for (const suite of options.suites ?? registered) {
    const suiteMatches = !filter || suite.name.toLowerCase().includes(filter)
    const cases = suite
      .cases({ quick })
      .filter((c) => suiteMatches || c.name.toLowerCase().includes(filter ?? ''))
    if (cases.length === 0) continue
    const result: SuiteResult = {
      name: suite.name,
      description: suite.description,
      cases: [],
      ratios: [],
    }
    for (const c of cases) {
      const r = await runCase(c, sampling)
      result.cases.push(r)
      if (r.error) report.failed = true
    }
    result.ratios = ratiosOf(result.cases)
    report.suites.push(result)
    log('')
    log(formatSuite(result))
  }
  if (report.suites.length === 0) log(`no suite or case matches --filter ${options.filter}`)

  if (options.json) {
    const path = resolve(options.json)
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, `${JSON.stringify(report, null, 2)}\n`)
    log(`\nwrote ${path}`)
  }
  return report
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
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      filter: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log('usage: node dist/bench/main.js [--quick] [--filter <substring>] [--json <path>]')
  } else {
    const report = await runBench({ quick: values.quick, filter: values.filter, json: values.json })
    // No process.exit: every case tears its workers down, so the process ends by itself.
    if (report.failed) process.exitCode = 1
  }
}
