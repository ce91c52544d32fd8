import { writeFileSync } from 'node:fs'
import { maxPayloadBytes } from '../../ring/index.js'
import { cpuCeiling } from '../../tune/cpu-ceiling.js'
import {
  formatBytes,
  type Recommendation,
  recommend,
  threadsWord,
  WITHIN_BEST,
} from '../../tune/recommend.js'
import { UsageError } from '../flags.js'
import type { TuneArgs } from './args.js'
import { generateMessages, largestEncoded, readNdjson } from './messages.js'
import { barChart, table } from './report.js'
import { svgChart } from './svg.js'
import { type ConfigurationResult, sweep } from './sweep.js'

/**
 * What `conveyor tune --json` prints, and what the command returns. Documented field by field
 * in the README ("Tune the thread count"); change both together.
 */
export interface TuneResult {
  handler: string
  messages: {
    /** 'ndjson': --messages; 'generator': --generator. */
    source: 'ndjson' | 'generator'
    /** The file's path, or the generator module's href. */
    from: string
    /** Distinct messages, cycled. */
    count: number
    /** The largest, encoded as JSON, bytes. */
    largestBytes: number
  }
  cpus: { count: number; detail: string }
  settings: {
    threads: number[]
    laneBytes: number[]
    durationS: number
    repeats: number
    warmupS: number
    codec: 'json'
    /** Handler attempts per message (no retries: see sweep.ts). */
    attempts: 1
    /** Recommendation threshold: share of the best throughput. */
    withinBest: number
  }
  /** Lane sizes left out, with why (a message too large for them). */
  skipped: { laneBytes: number; reason: string }[]
  configurations: ConfigurationResult[]
  firstFailure: string | null
  recommendation: Recommendation | null
}

/** Runs `conveyor tune`; prints the table (or the JSON document). Returns the exit code. */
export async function runTune(args: TuneArgs): Promise<number> {
  // With --json, stdout carries one JSON document and nothing else: what the handler (in its
  // workers) or a generator prints goes to stderr, for the rest of the command.
  const print = args.json ? stdoutToStderr() : (text: string) => process.stdout.write(text)
  const messages =
    args.messages !== undefined
      ? readNdjson(args.messages)
      : await generateMessages(args.generator as string)
  const largest = largestEncoded(messages)
  const skipped: TuneResult['skipped'] = []
  const laneBytes = args.laneBytes.filter((lane) => {
    if (largest <= maxPayloadBytes(lane)) return true
    skipped.push({
      laneBytes: lane,
      reason: `the largest message (${largest} bytes) is over half a ${formatBytes(lane)} lane`,
    })
    return false
  })
  if (laneBytes.length === 0) {
    throw new UsageError(
      `--lane-bytes: the largest message (${largest} bytes) fits none of the lane sizes (a lane takes messages up to half its size)`,
    )
  }
  const configurations = laneBytes.flatMap((lane) =>
    args.threads.map((threads) => ({ threads, laneBytes: lane })),
  )
  const log = (line: string) => {
    if (!args.json) process.stderr.write(`${line}\n`)
  }
  const perSliceS = args.warmupS + args.durationS / args.repeats
  log(
    `Tuning ${args.handler} on ${messages.length} messages: ${configurations.length} configurations × ${args.repeats} repeats, about ${Math.ceil(configurations.length * args.repeats * (perSliceS + 0.2))} s.`,
  )
  for (const s of skipped) log(`Skipping ${formatBytes(s.laneBytes)} lanes: ${s.reason}.`)
  const swept = await sweep({
    handler: args.handler,
    messages,
    configurations,
    durationS: args.durationS,
    repeats: args.repeats,
    warmupS: args.warmupS,
    onSlice: (s) =>
      log(
        `  [${s.index}/${s.total}] repeat ${s.repeat}: ${threadsWord(s.threads)}, ${formatBytes(s.laneBytes)} lanes`,
      ),
  })
  const ceiling = cpuCeiling()
  const recommendation = recommend(swept.configurations, ceiling.cpus)
  const result: TuneResult = {
    handler: args.handler,
    messages: {
      source: args.messages !== undefined ? 'ndjson' : 'generator',
      from: (args.messages ?? args.generator) as string,
      count: messages.length,
      largestBytes: largest,
    },
    cpus: { count: ceiling.cpus, detail: ceiling.detail },
    settings: {
      threads: args.threads,
      laneBytes,
      durationS: args.durationS,
      repeats: args.repeats,
      warmupS: args.warmupS,
      codec: 'json',
      attempts: 1,
      withinBest: WITHIN_BEST,
    },
    skipped,
    configurations: swept.configurations,
    firstFailure: swept.firstFailure,
    recommendation,
  }
  if (args.chart !== undefined)
    writeFileSync(args.chart, svgChart(result.configurations, recommendation))
  if (args.json) {
    print(`${JSON.stringify(result, null, 2)}\n`)
  } else {
    printResult(result)
    if (args.chart !== undefined) console.log(`Chart written to ${args.chart}`)
  }
  // Nothing finished in any configuration (a handler that never returns): no recommendation.
  return recommendation === null ? 1 : 0
}

function printResult(result: TuneResult): void {
  const { configurations: configs, recommendation: r } = result
  console.log(
    `\nconveyor tune: ${result.handler}\n${result.messages.count} messages from ${result.messages.from}; ${result.cpus.count} CPUs (${result.cpus.detail}); medians of ${result.settings.repeats} repeats, ${result.settings.durationS} s measured per configuration\n`,
  )
  console.log(table(configs, r))
  console.log('')
  console.log(barChart(configs, r))
  const failed = configs.reduce((n, c) => n + c.failed, 0)
  if (failed > 0) {
    console.log(
      `\nThe handler threw ${failed} times in the measured windows (first: ${result.firstFailure}); those messages count as finished.`,
    )
  }
  console.log(
    r
      ? `\nRecommended: threads: ${r.threads}, laneBytes: ${r.laneBytes}\n${r.reason}.`
      : '\nNo recommendation: no configuration finished a message (does the handler return?).',
  )
}

/** Sends every later process.stdout write (workers' output included) to stderr; returns the real stdout write. */
function stdoutToStderr(): (text: string) => void {
  const stdout = process.stdout
  const write = stdout.write.bind(stdout)
  stdout.write = process.stderr.write.bind(process.stderr) as typeof stdout.write
  return (text) => write(text)
}
