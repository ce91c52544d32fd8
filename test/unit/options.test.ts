import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { BUILTIN_CODECS } from '../../src/codec/index.js'
import { ConveyorError, type ConveyorErrorCode } from '../../src/errors.js'
import {
  type QueueOptions,
  resolveOptions,
  resolveThreads,
  THREADS_PER_CORE,
  threadCeiling,
} from '../../src/queue/options.js'
import { cpuCeiling } from '../../src/tune/cpu-ceiling.js'

const handlerUrl = new URL('../fixtures/echo.mjs', import.meta.url)
const handler = fileURLToPath(handlerUrl)
const codecModule = fileURLToPath(new URL('../fixtures/codec-base64.mjs', import.meta.url))

function resolve(extra: Record<string, unknown>) {
  return resolveOptions({ handler, ...extra } as QueueOptions)
}

/** Asserts a ConveyorError with `code` whose message names `option`. */
function expectRefused(
  fn: () => unknown,
  option: string,
  code: ConveyorErrorCode = 'INVALID_OPTION',
) {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown, `${option}: nothing thrown`).toBeInstanceOf(ConveyorError)
  const err = thrown as ConveyorError
  expect(err.code).toBe(code)
  expect(err.message).toContain(option)
}

describe('threadCeiling', () => {
  it(`is ${THREADS_PER_CORE} per CPU this process may use (src/tune/cpu-ceiling.ts)`, () => {
    expect(threadCeiling()).toBe(THREADS_PER_CORE * cpuCeiling().cpus)
  })

  it('a refusal says how many CPUs, and where that number came from', () => {
    const { cpus, detail } = cpuCeiling()
    expectRefused(() => resolveThreads(threadCeiling() + 1), `may use ${cpus} CPU`)
    expectRefused(() => resolveThreads(threadCeiling() + 1), `(${detail})`)
  })
})

describe('resolveOptions defaults', () => {
  it('fills every option left out', () => {
    const cores = cpuCeiling().cpus
    expect(resolveOptions({ handler })).toEqual({
      handler: pathToFileURL(handler).href,
      threads: cores,
      maxThreads: cores,
      codec: 'json',
      laneBytes: 1 << 20,
      ordering: 'none',
      attempts: 3,
      backoffMs: 50,
      maxBackoffMs: 5000,
      jitter: true,
      maxWaiting: 10_000,
      high: 0.8,
      low: 0.3,
      startTimeoutMs: 30_000,
      resourceLimits: undefined,
      env: undefined,
      execArgv: undefined,
      workerData: undefined,
      drainBudgetMs: undefined,
      // 'auto' is a range from 1 to the usable CPUs (fixed where there is only one).
      adaptive: cores > 1 ? { min: 1, max: cores } : undefined,
    })
  })

  it("makes 'auto' a range and keeps a number fixed", () => {
    const cores = cpuCeiling().cpus
    const auto = cores > 1 ? { min: 1, max: cores } : undefined
    expect(resolve({ threads: 'auto' }).adaptive).toEqual(auto)
    expect(resolve({ threads: 1 }).adaptive).toBeUndefined()
    expect(resolve({ threads: { min: 1, max: 1 } }).adaptive).toEqual({ min: 1, max: 1 })
  })

  it('keeps the other half of a partly given retry or watermarks', () => {
    expect(resolve({ retry: { attempts: 5 } })).toMatchObject({ attempts: 5, backoffMs: 50 })
    expect(resolve({ retry: { backoffMs: 0 } })).toMatchObject({ attempts: 3, backoffMs: 0 })
    expect(resolve({ watermarks: { high: 0.9 } })).toMatchObject({ high: 0.9, low: 0.3 })
    expect(resolve({ watermarks: { low: 0.1 } })).toMatchObject({ high: 0.8, low: 0.1 })
  })
})

describe('resolveOptions handler', () => {
  it('takes a path or a file URL, as a file URL', () => {
    const href = pathToFileURL(handler).href
    expect(resolveOptions({ handler }).handler).toBe(href)
    expect(resolveOptions({ handler: handlerUrl }).handler).toBe(href)
    expect(resolveOptions({ handler: href }).handler).toBe(href)
  })

  it('refuses a missing or non-string handler with HANDLER_INVALID', () => {
    expectRefused(() => resolveOptions({} as QueueOptions), 'handler', 'HANDLER_INVALID')
    expectRefused(() => resolveOptions({ handler: 42 } as never), 'handler', 'HANDLER_INVALID')
  })

  it('refuses a handler file that does not exist', () => {
    const missing = fileURLToPath(new URL('../fixtures/no-such-handler.mjs', import.meta.url))
    expectRefused(() => resolveOptions({ handler: missing }), 'handler', 'HANDLER_INVALID')
    expectRefused(() => resolveOptions({ handler: missing }), missing, 'HANDLER_INVALID')
  })

  it('refuses something that is not an options object', () => {
    expectRefused(() => resolveOptions(undefined as never), 'options')
    expectRefused(() => resolveOptions('x' as never), 'options')
  })
})

describe('resolveThreads', () => {
  const cores = cpuCeiling().cpus

  it("takes undefined and 'auto' as the CPUs this process may use", () => {
    expect(resolveThreads(undefined)).toBe(cores)
    expect(resolveThreads('auto')).toBe(cores)
  })

  it('takes any count from 1 to the ceiling', () => {
    expect(resolveThreads(1)).toBe(1)
    expect(resolveThreads(threadCeiling())).toBe(threadCeiling())
  })

  it('starts a range at the CPUs, clamped to the range', () => {
    expect(resolveThreads({ min: 1, max: threadCeiling() })).toBe(cores)
    expect(resolveThreads({ min: 1, max: 1 })).toBe(1)
    expect(resolveThreads({ min: threadCeiling(), max: threadCeiling() })).toBe(threadCeiling())
  })

  it.each<[string, unknown, string]>([
    ['0', 0, 'threads'],
    ['-1', -1, 'threads'],
    ['1.5', 1.5, 'threads'],
    ['NaN', Number.NaN, 'threads'],
    ["'x'", 'x', 'threads'],
    ['null', null, 'threads'],
    ['above the ceiling', threadCeiling() + 1, 'threads'],
    ['{ min: 3, max: 2 }', { min: 3, max: 2 }, 'threads.min'],
    ['{ min: 0, max: 2 }', { min: 0, max: 2 }, 'threads.min'],
    ['{ min: 1, max: above the ceiling }', { min: 1, max: threadCeiling() + 1 }, 'threads.max'],
    ['{ min: 1 }', { min: 1 }, 'threads.max'],
  ])('refuses threads %s', (_, threads, option) => {
    expectRefused(() => resolveThreads(threads as never), option)
    expectRefused(() => resolve({ threads }), option)
  })

  it('reports the ceiling range as maxThreads', () => {
    const resolved = resolve({ threads: { min: 1, max: threadCeiling() } })
    expect(resolved.maxThreads).toBe(threadCeiling())
    expect(resolve({ threads: 1 }).maxThreads).toBe(cores)
  })
})

describe('resolveOptions refuses each invalid option, naming it', () => {
  const cases: [string, unknown, string][] = [
    ['laneBytes', 5000, 'laneBytes'],
    ['laneBytes', 2048, 'laneBytes'],
    ['laneBytes', 2 ** 30, 'laneBytes'],
    ['laneBytes', 0, 'laneBytes'],
    ['laneBytes', -4096, 'laneBytes'],
    ['laneBytes', '4096', 'laneBytes'],
    ['ordering', 'fifo', 'ordering'],
    ['ordering', 1, 'ordering'],
    ['retry', 3, 'retry'],
    ['retry', 'x', 'retry'],
    ['retry', null, 'retry'],
    ['retry', [1], 'retry'],
    ['retry', { attempts: 0 }, 'retry.attempts'],
    ['retry', { attempts: 256 }, 'retry.attempts'],
    ['retry', { attempts: 1.5 }, 'retry.attempts'],
    ['retry', { attempts: '3' }, 'retry.attempts'],
    ['retry', { backoffMs: -1 }, 'retry.backoffMs'],
    ['retry', { maxBackoffMs: -1 }, 'retry.maxBackoffMs'],
    ['retry', { maxBackoffMs: Number.NaN }, 'retry.maxBackoffMs'],
    ['retry', { jitter: 'yes' }, 'retry.jitter'],
    ['retry', { backoffMs: Number.NaN }, 'retry.backoffMs'],
    ['retry', { backoffMs: Number.POSITIVE_INFINITY }, 'retry.backoffMs'],
    ['retry', { backoffMs: '50' }, 'retry.backoffMs'],
    ['maxWaiting', -1, 'maxWaiting'],
    ['maxWaiting', 1.5, 'maxWaiting'],
    ['maxWaiting', '10', 'maxWaiting'],
    ['watermarks', { low: 0.5, high: 0.5 }, 'watermarks'],
    ['watermarks', { low: 0.6, high: 0.5 }, 'watermarks'],
    ['watermarks', { low: 0.9 }, 'watermarks'],
    ['watermarks', { high: 1.5 }, 'watermarks'],
    ['watermarks', { low: -0.1 }, 'watermarks'],
    ['watermarks', { high: '0.8' }, 'watermarks'],
    ['watermarks', { low: Number.NaN }, 'watermarks'],
    ['watermarks', 0.8, 'watermarks'],
    ['startTimeoutMs', 0, 'startTimeoutMs'],
    ['startTimeoutMs', -1, 'startTimeoutMs'],
    ['startTimeoutMs', 'x', 'startTimeoutMs'],
    ['startTimeoutMs', Number.NaN, 'startTimeoutMs'],
    ['startTimeoutMs', 2 ** 31, 'startTimeoutMs'],
    ['resourceLimits', 'x', 'resourceLimits'],
    ['resourceLimits', { maxOldGenerationSizeMb: -1 }, 'resourceLimits.maxOldGenerationSizeMb'],
    ['resourceLimits', { stackSizeMb: 'big' }, 'resourceLimits.stackSizeMb'],
    ['resourceLimits', { bogus: 1 }, 'resourceLimits.bogus'],
    ['env', 'x', 'env'],
    ['env', { A: 1 }, 'env.A'],
    ['execArgv', 'x', 'execArgv'],
    ['execArgv', [1], 'execArgv'],
    ['execArgv', ['--flag', null], 'execArgv'],
    ['workerData', () => {}, 'workerData'],
    ['workerData', Symbol('s'), 'workerData'],
    ['workerData', { nested: { fn: () => {} } }, 'workerData'],
    ['codec', 'yaml', 'codec'],
    ['codec', {}, 'codec'],
    ['codec', { module: 42 }, 'codec'],
    ['codec', 5, 'codec'],
  ]

  it.each(cases)('%s: %o', (name, value, option) => {
    expectRefused(() => resolve({ [name]: value }), option)
  })
})

describe('resolveOptions passes valid values through', () => {
  it.each([4096, 1 << 20, 2 ** 29])('laneBytes %i', (laneBytes) => {
    expect(resolve({ laneBytes }).laneBytes).toBe(laneBytes)
  })

  it.each(['none', 'key'])('ordering %s', (ordering) => {
    expect(resolve({ ordering }).ordering).toBe(ordering)
  })

  it('retry bounds', () => {
    expect(resolve({ retry: { attempts: 1, backoffMs: 0 } })).toMatchObject({
      attempts: 1,
      backoffMs: 0,
    })
    expect(resolve({ retry: { attempts: 255, backoffMs: 2.5 } })).toMatchObject({
      attempts: 255,
      backoffMs: 2.5,
    })
  })

  it('maxWaiting 0 and large', () => {
    expect(resolve({ maxWaiting: 0 }).maxWaiting).toBe(0)
    expect(resolve({ maxWaiting: 1e6 }).maxWaiting).toBe(1e6)
  })

  it('watermarks at the ends of 0..1', () => {
    expect(resolve({ watermarks: { low: 0, high: 1 } })).toMatchObject({ low: 0, high: 1 })
  })

  it('startTimeoutMs up to 2^31-1', () => {
    expect(resolve({ startTimeoutMs: 1 }).startTimeoutMs).toBe(1)
    expect(resolve({ startTimeoutMs: 0.5 }).startTimeoutMs).toBe(0.5)
    expect(resolve({ startTimeoutMs: 2 ** 31 - 1 }).startTimeoutMs).toBe(2 ** 31 - 1)
  })

  it('resourceLimits, env, execArgv and workerData as given', () => {
    const resourceLimits = {
      maxOldGenerationSizeMb: 512,
      maxYoungGenerationSizeMb: 32,
      codeRangeSizeMb: 16,
      stackSizeMb: 4,
    }
    const env = { A: '1', B: '' }
    const execArgv = ['--no-warnings']
    const workerData = { config: [1, 'two', { three: new Date(0) }] }
    const resolved = resolve({ resourceLimits, env, execArgv, workerData })
    expect(resolved.resourceLimits).toBe(resourceLimits)
    expect(resolved.env).toBe(env)
    expect(resolved.execArgv).toBe(execArgv)
    expect(resolved.workerData).toBe(workerData)
    expect(resolve({ resourceLimits: {}, env: {}, execArgv: [] })).toMatchObject({
      resourceLimits: {},
      env: {},
      execArgv: [],
    })
  })

  it.each([...BUILTIN_CODECS])('codec %s', (codec) => {
    expect(resolve({ codec }).codec).toBe(codec)
  })

  it('a codec module, as a file URL', () => {
    const href = pathToFileURL(codecModule).href
    expect(resolve({ codec: { module: codecModule } }).codec).toEqual({ module: href })
    expect(resolve({ codec: { module: new URL(href) } }).codec).toEqual({ module: href })
  })
})
