import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { cpuCeiling } from '../../tune/cpu-ceiling.js'
import { existingFile, numberFlag, parseFlags, UsageError } from '../flags.js'

export interface TuneArgs {
  /** The handler module's href. */
  handler: string
  /** Exactly one of these two: an NDJSON file's path, or a generator module's href. */
  messages: string | undefined
  generator: string | undefined
  threads: number[]
  laneBytes: number[]
  /** Measured seconds per configuration. */
  durationS: number
  repeats: number
  /** Warm-up seconds before each measured slice. */
  warmupS: number
  json: boolean
  /** Where to write the SVG chart, resolved; undefined: none. */
  chart: string | undefined
}

export const TUNE_DEFAULTS = {
  durationS: 3,
  repeats: 3,
  warmupS: 0.25,
  laneBytes: [1 << 16, 1 << 20],
} as const

/** The queue allows at most this many threads per CPU (src/queue/options.ts). */
const THREADS_PER_CPU = 4

export const TUNE_HELP = `tune options:
  --handler <module>     your handler module (required)
  --messages <file>      NDJSON: one JSON message per line (blank lines skipped), cycled
  --generator <module>   or a module whose default export is (i) => message, or a (async)
                         generator function; its first 16384 messages are used, cycled
  --threads <list>       thread counts to sweep: 1..4, 1,2,4 or 3 (default 1..${cpuCeiling().cpus},
                         the CPUs this process may use)
  --lane-bytes <list>    lane sizes to sweep, powers of two: 64k,1m (default)
  --duration <seconds>   measured time per configuration, split over the repeats (default 3)
  --repeats <n>          measured slices per configuration, interleaved with the others;
                         the medians are reported (default 3, at least 3)
  --warmup <seconds>     warm-up before each slice (default 0.25)
  --chart <file.svg>     also write the throughput chart as SVG
  --json                 print only the result, one JSON document (see the README)`

export function parseTuneArgs(argv: string[]): TuneArgs {
  const values = parseFlags(argv, {
    handler: { type: 'string' },
    messages: { type: 'string' },
    generator: { type: 'string' },
    threads: { type: 'string' },
    'lane-bytes': { type: 'string' },
    duration: { type: 'string' },
    repeats: { type: 'string' },
    warmup: { type: 'string' },
    chart: { type: 'string' },
    json: { type: 'boolean' },
  })
  const str = (name: string) => values[name] as string | undefined
  const handlerPath = str('handler')
  if (handlerPath === undefined) throw new UsageError('tune needs --handler <module>')
  const handler = existingFile('handler', handlerPath)
  const messagesPath = str('messages')
  const generatorPath = str('generator')
  if ((messagesPath === undefined) === (generatorPath === undefined)) {
    throw new UsageError(
      'tune needs your messages: either --messages <file.ndjson> or --generator <module> (one of them)',
    )
  }
  const repeats = numberFlag('repeats', str('repeats'), TUNE_DEFAULTS.repeats, 3)
  if (!Number.isInteger(repeats)) {
    throw new UsageError(`--repeats must be a whole number ≥ 3, got '${str('repeats')}'`)
  }
  return {
    handler: pathToFileURL(handler).href,
    messages: messagesPath === undefined ? undefined : existingFile('messages', messagesPath),
    generator:
      generatorPath === undefined
        ? undefined
        : pathToFileURL(existingFile('generator', generatorPath)).href,
    threads: parseThreads(str('threads')),
    laneBytes: parseLaneBytes(str('lane-bytes')),
    durationS: numberFlag('duration', str('duration'), TUNE_DEFAULTS.durationS, 0.1),
    repeats,
    warmupS: numberFlag('warmup', str('warmup'), TUNE_DEFAULTS.warmupS, 0),
    json: values.json === true,
    chart: str('chart') === undefined ? undefined : resolve(str('chart')!),
  }
}

export function parseThreads(value: string | undefined): number[] {
  const ceiling = cpuCeiling()
  if (value === undefined) return Array.from({ length: ceiling.cpus }, (_, i) => i + 1)
  const bad = (why: string) =>
    new UsageError(`--threads takes 1..N, a list like 1,2,4, or a count: ${why}, got '${value}'`)
  const whole = (text: string) => {
    const n = Number(text)
    if (text.trim() === '' || !Number.isInteger(n) || n < 1)
      throw bad(`'${text}' is not a count ≥ 1`)
    return n
  }
  let counts: number[]
  const range = /^(.*)\.\.(.*)$/.exec(value)
  if (range) {
    const [from, to] = [whole(range[1]), whole(range[2])]
    if (to < from) throw bad('the range ends before it starts')
    counts = Array.from({ length: to - from + 1 }, (_, i) => from + i)
  } else {
    counts = value.split(',').map(whole)
  }
  const max = ceiling.cpus * THREADS_PER_CPU
  const over = counts.find((n) => n > max)
  if (over !== undefined) {
    throw new UsageError(
      `--threads: ${over} is more than the ${max} threads a queue may have here (${THREADS_PER_CPU} per CPU; this process may use ${ceiling.cpus}: ${ceiling.detail})`,
    )
  }
  return [...new Set(counts)].sort((a, b) => a - b)
}

/** "64k,1m", "65536": powers of two from 4 KiB to 512 MiB, sorted, without duplicates. */
export function parseLaneBytes(value: string | undefined): number[] {
  if (value === undefined) return [...TUNE_DEFAULTS.laneBytes]
  const sizes = value.split(',').map((text) => {
    const m = /^\s*(\d+)\s*([kKmM]?)i?[bB]?\s*$/.exec(text)
    const n = m ? Number(m[1]) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1024 : 1 << 20) : Number.NaN
    if (!(n >= 4096 && n <= 2 ** 29 && (n & (n - 1)) === 0)) {
      throw new UsageError(
        `--lane-bytes takes powers of two from 4k to 512m, like 64k,1m; got '${text}' in '${value}'`,
      )
    }
    return n
  })
  return [...new Set(sizes)].sort((a, b) => a - b)
}
