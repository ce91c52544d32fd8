import { describe, expect, it } from 'vitest'
import { createQueue, type QueueOptions } from '../../dist/src/index.js'
import { within } from './edges-helpers.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, thrown } from './helpers.js'

stopQueuesAfterEach()

const echo = fixture('echo.mjs')

describe('push() / run() callback options are validated', () => {
  // Defect: push(m, { ack: 42 }) and friends were accepted; the bad callback was silently
  // dropped (or blew up later inside a lane's drain) and the message was enqueued anyway.
  it.each<[string, (q: ReturnType<typeof makeQueue>) => Promise<unknown>, RegExp]>([
    ['push ack: 42', (q) => q.push({ id: 1 }, { ack: 42 as never }), /\back\b/],
    ['push nack: "x"', (q) => q.push({ id: 1 }, { nack: 'x' as never }), /\bnack\b/],
    ['push key: {}', (q) => q.push({ id: 1 }, { key: {} as never }), /\bkey\b/],
    ['push key: NaN', (q) => q.push({ id: 1 }, { key: Number.NaN }), /\bkey\b/],
    ['push options: 5', (q) => q.push({ id: 1 }, 5 as never), /option/i],
    ['run key: []', (q) => q.run({ id: 1 }, { key: [] as never }), /\bkey\b/],
  ])(
    '%s rejects with INVALID_OPTION naming it; nothing is enqueued',
    async (_name, call, names) => {
      const queue = makeQueue({ handler: echo, threads: 1 })
      await queue.start()
      await queue.push({ id: 0 })
      const before = queue.stats().pushed
      const err = await rejection(within(call(queue), 'the call'))
      expect(err.code, String(err)).toBe('INVALID_OPTION')
      expect(err.message).toMatch(names)
      expect(queue.stats().pushed).toBe(before)
      // The same (only) lane still answers.
      expect(await within(queue.run({ id: 2 }), 'run() after it')).toEqual({ id: 2 })
      const report = await within(queue.stop(), 'stop()')
      expect(report).toMatchObject({ pushed: 2, completed: 2, unprocessed: [] })
    },
  )
})

/** The numbers in a message, other than those the caller passed in. */
function otherNumbers(message: string, ...given: number[]): number[] {
  return (message.match(/\d+/g) ?? []).map(Number).filter((n) => n >= 2 && !given.includes(n))
}

describe('a ceiling on threads', () => {
  // Defect: threads: 1000 was accepted (a thousand workers and rings on start()).
  it.each<[string, QueueOptions['threads']]>([
    ['threads: 1000', 1000],
    ['threads: { min: 1, max: 1000 }', { min: 1, max: 1000 }],
  ])('createQueue with %s throws INVALID_OPTION naming the ceiling', (_name, threads) => {
    const err = thrown(() => createQueue({ handler: echo, threads }))
    expect(err.code, String(err)).toBe('INVALID_OPTION')
    expect(otherNumbers(err.message, 1000), err.message).not.toEqual([])
  })

  // Guards the same ceiling on resize().
  it('resize(1000) rejects with INVALID_OPTION', async () => {
    const queue = makeQueue({ handler: echo, threads: 1 })
    await queue.start()
    const err = await rejection(within(queue.resize(1000), 'resize(1000)'))
    expect(err.code, String(err)).toBe('INVALID_OPTION')
    expect(queue.stats().threads).toBe(1)
  })
})

describe('Piscina pass-through options are type-checked at createQueue', () => {
  // Defect: wrong types went straight to Piscina and failed late (at start(), inside a
  // worker) or not at all, instead of INVALID_OPTION naming the option.
  it.each<[string, string, Record<string, unknown>]>([
    ["execArgv: 'x'", 'execArgv', { execArgv: 'x' }],
    ['execArgv: [1]', 'execArgv', { execArgv: [1] }],
    ["env: 'x'", 'env', { env: 'x' }],
    ['env: { A: 1 }', 'env', { env: { A: 1 } }],
    ['workerData: a function', 'workerData', { workerData: () => 1 }],
    ["resourceLimits: 'x'", 'resourceLimits', { resourceLimits: 'x' }],
    [
      'resourceLimits: { maxOldGenerationSizeMb: -1 }',
      'resourceLimits',
      { resourceLimits: { maxOldGenerationSizeMb: -1 } },
    ],
    ['resourceLimits: { bogus: 1 }', 'resourceLimits', { resourceLimits: { bogus: 1 } }],
    ['startTimeoutMs: -1', 'startTimeoutMs', { startTimeoutMs: -1 }],
    ["startTimeoutMs: 'x'", 'startTimeoutMs', { startTimeoutMs: 'x' }],
  ])('%s throws INVALID_OPTION naming %s', (_name, option, extra) => {
    const err = thrown(() => createQueue({ handler: echo, threads: 1, ...extra } as never))
    expect(err.code, String(err)).toBe('INVALID_OPTION')
    expect(err.message).toContain(option)
  })
})
