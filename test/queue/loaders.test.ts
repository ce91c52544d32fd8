import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, rejection, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

/** tsx from this repository, by absolute URL: the apps below run from any directory. */
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const app = fixture('loaders/app.ts')
const index = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url))

interface Spawned {
  status: number | null
  stdout: string
  stderr: string
}

function node(args: string[]): Spawned {
  const { status, stdout, stderr } = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { status, stdout, stderr }
}

/** The app's last stdout line, parsed; fails with its stderr when it did not finish. */
function lastJson(run: Spawned): unknown {
  expect(run.status, run.stderr).toBe(0)
  return JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '')
}

type Outcome =
  | { results: number[]; execArgv: string[] }
  | { error: { code?: string; message: string } }

/** `node --import tsx app.ts`: a TypeScript app, one queue per TypeScript handler. */
function tsxApp(options: {
  handlers: string[]
  execArgv?: string[]
  codec?: string
}): Record<string, Outcome> {
  return lastJson(node(['--import', tsx, app, JSON.stringify(options)])) as Record<string, Outcome>
}

/** A JavaScript app (no loader needed): starts a queue on `handler`, runs 21, prints the outcome. */
function plainApp(nodeFlags: string[], handler: string, execArgv?: string[]): Spawned {
  const script = `
    const { createQueue } = await import(${JSON.stringify(index)})
    const queue = createQueue({ handler: ${JSON.stringify(handler)}, threads: 1, execArgv: ${JSON.stringify(execArgv)} })
    try {
      await queue.start()
      console.log(JSON.stringify({ result: await queue.run(21) }))
    } catch (err) {
      console.log(JSON.stringify({ error: { code: err.code, message: err.message } }))
    } finally {
      await queue.stop()
    }`
  return node([...nodeFlags, '--input-type=module', '-e', script])
}

describe('TypeScript handlers under a loader', () => {
  it('node --import tsx: .ts, .mts and .cts handlers load, and workers inherit the loader', () => {
    const outcomes = tsxApp({ handlers: ['handler.ts', 'handler.mts', 'handler.cts'] })
    expect(outcomes).toEqual({
      'handler.ts': { results: [2, 4, 6], execArgv: expect.arrayContaining(['--import', tsx]) },
      'handler.mts': { results: [3, 6, 9], execArgv: expect.arrayContaining(['--import', tsx]) },
      'handler.cts': { results: [5, 10, 15], execArgv: expect.arrayContaining(['--import', tsx]) },
    })
  })

  it('a TypeScript codec module loads in the workers too', () => {
    const outcomes = tsxApp({ handlers: ['handler.ts'], codec: 'codec.ts' })
    expect(outcomes['handler.ts']).toMatchObject({ results: [2, 4, 6] })
  })

  it("a user's execArgv is used, after the app's loader flags", () => {
    const outcomes = tsxApp({ handlers: ['handler.ts'], execArgv: ['--trace-uncaught'] })
    expect(outcomes['handler.ts']).toEqual({
      results: [2, 4, 6],
      execArgv: ['--import', tsx, '--trace-uncaught'],
    })
  })

  it("a user's execArgv that names its own loader is used as given", () => {
    const execArgv = [`--import=${tsx}`, '--trace-uncaught']
    const outcomes = tsxApp({ handlers: ['handler.ts'], execArgv })
    expect(outcomes['handler.ts']).toEqual({ results: [2, 4, 6], execArgv })
  })

  it('a JavaScript app loads a .ts handler with the loader named in execArgv', () => {
    const run = plainApp([], fixture('loaders/handler.ts'), ['--import', tsx])
    expect(lastJson(run)).toEqual({ result: { result: 42, execArgv: ['--import', tsx] } })
  })

  it('a .ts handler without a loader is HANDLER_INVALID, saying how to run one', () => {
    const run = plainApp([], fixture('loaders/handler.ts'))
    const { error } = lastJson(run) as { error: { code: string; message: string } }
    expect(error.code).toBe('HANDLER_INVALID')
    expect(error.message).toContain('loaders/handler.ts')
    expect(error.message).toContain('no TypeScript loader')
    expect(error.message).toContain('node --import tsx')
  })
})

describe('worker flags', () => {
  // Handing a V8 flag to a Worker explicitly is an error; Node's own inheritance drops it.
  it('an app started with a V8 flag runs its queue (workers inherit what they can take)', () => {
    const run = plainApp(['--max-old-space-size=256'], fixture('echo.mjs'))
    expect(lastJson(run)).toEqual({ result: 21 })
  })

  it('a V8 flag in execArgv is INVALID_OPTION at start()', async () => {
    const queue = makeQueue({
      handler: fixture('echo.mjs'),
      threads: 1,
      execArgv: ['--max-old-space-size=64'],
    })
    const err = await rejection(queue.start())
    expect(err).toMatchObject({ code: 'INVALID_OPTION' })
    expect(err.message).toContain('--max-old-space-size=64')
    expect(err.message).toContain('resourceLimits')
  })

  // require(esm) of the lane task once aborted the process under load; the workers load it
  // through a CommonJS entry and import(). Node reports every require(esm) under this flag.
  it.skipIf(!process.allowedNodeEnvironmentFlags.has('--trace-require-module'))(
    'workers load the lane task without require(esm)',
    () => {
      const run = plainApp(['--trace-require-module=all'], fixture('echo.mjs'))
      expect(lastJson(run)).toEqual({ result: 21 })
      expect(run.stderr).not.toMatch(/using require\(\)/)
    },
  )
})
