#!/usr/bin/env node
import { readFileSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { isConveyorError } from '../errors.js'
import { HELP, parseDemoArgs, UsageError } from './args.js'
import { BUILTIN_HANDLER, runDemo } from './demo/demo.js'
import { printSummary } from './demo/summary.js'
import { parseTuneArgs } from './tune/args.js'
import { runTune } from './tune/tune.js'

/** The `conveyor` command. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(HELP)
    return 0
  }
  if (first === '--version' || first === '-v') {
    console.log(version())
    return 0
  }
  try {
    if (first === 'bench') {
      // The peer comparisons need the repository and its devDependencies (Piscina's peers,
      // tinybench): they are not in the package, so the package's command does not offer them.
      throw new UsageError(
        "'bench' is not part of the installed command: in a clone of the repository, run npm run bench",
      )
    }
    if (first === 'tune') return await runTune(parseTuneArgs(rest))
    const args = parseDemoArgs(first === 'demo' ? rest : argv)
    const summary = await runDemo({
      durationS: args.durationS,
      threads: args.threads,
      handler: args.handler ?? BUILTIN_HANDLER,
      rate: args.rate,
      verbose: !args.json,
    })
    if (args.json) console.log(JSON.stringify(summary, null, 2))
    else printSummary(summary)
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`conveyor: ${err.message}\nRun 'conveyor --help' for the options.`)
      return 2
    }
    if (isConveyorError(err, 'HANDLER_INVALID') || isConveyorError(err, 'INVALID_OPTION')) {
      console.error(`conveyor: ${err.message}`)
      return 2
    }
    console.error(err)
    return 1
  }
}

/** The installed package's version (package.json ships with it, beside dist/). */
function version(): string {
  const pkg = new URL('../../../package.json', import.meta.url)
  return (JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }).version
}

const invokedDirectly =
  process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)
if (invokedDirectly) process.exitCode = await main(process.argv.slice(2))
