import { pathToFileURL } from 'node:url'
import { cpuCeiling } from '../tune/cpu-ceiling.js'
import { existingFile, numberFlag, parseFlags, UsageError } from './flags.js'
import { TUNE_HELP } from './tune/args.js'

export { UsageError }

export const HELP = `conveyor — consume messages in parallel on every core

Usage:
  conveyor [demo] [options]     run the demo pipeline (the default; npm start)
  conveyor tune --handler <module> (--messages <file.ndjson> | --generator <module>) [options]
                                measure your handler at each thread count and lane size,
                                and recommend a setting
  conveyor --help
  conveyor --version

demo options:
  --duration <seconds>   how long the conveyor run lasts (default 20); the Piscina and
                         inline comparisons then take a fifth of it each (1..5 s)
  --threads <n|auto>     worker threads (default auto: the CPUs this process may use,
                         ${cpuCeiling().cpus} here: ${cpuCeiling().detail})
  --handler <module>     your handler module instead of the built-in order handler; it
                         receives the demo's JSON order events
  --rate <msg/s>         limit the producer's rate (default: as fast as workers take them)
  --json                 print only the summary, as JSON

${TUNE_HELP}

The peer benchmarks (Piscina, tinypool, thread-stream, ringbuf.js) live in the repository:
npm run bench [-- --quick] [-- --filter <text>] [-- --no-save].

Exit codes: 0 done, 1 failed, 2 bad arguments.`

export interface DemoArgs {
  durationS: number
  threads: number
  handler: string | undefined
  rate: number
  json: boolean
}

export function parseDemoArgs(argv: string[]): DemoArgs {
  const values = parseFlags(argv, {
    duration: { type: 'string' },
    threads: { type: 'string' },
    handler: { type: 'string' },
    rate: { type: 'string' },
    json: { type: 'boolean' },
  })
  const threadsArg = values.threads as string | undefined
  const threads =
    threadsArg === undefined || threadsArg === 'auto'
      ? cpuCeiling().cpus
      : numberFlag('threads', threadsArg, 0, 1)
  if (!Number.isInteger(threads))
    throw new UsageError(`--threads must be a whole number or 'auto', got '${threadsArg}'`)
  let handler: string | undefined
  if (typeof values.handler === 'string') {
    handler = pathToFileURL(existingFile('handler', values.handler)).href
  }
  const durationS = numberFlag('duration', values.duration as string | undefined, 20, 0.1)
  return {
    durationS,
    threads,
    handler,
    rate: numberFlag('rate', values.rate as string | undefined, 0, 0),
    json: values.json === true,
  }
}
