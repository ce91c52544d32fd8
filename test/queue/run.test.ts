import { describe, expect, it } from 'vitest'
import { isConveyorError, type Queue } from '../../dist/src/index.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

const ATTEMPTS = 3

async function startQueue(): Promise<{
  queue: Queue
  failed: { message: string; attempt: number }[]
  deadLetters: unknown[]
}> {
  const queue = makeQueue({
    handler: fixture('run.mjs'),
    threads: 2,
    retry: { attempts: ATTEMPTS, backoffMs: 1 },
  })
  const failed: { message: string; attempt: number }[] = []
  const deadLetters: unknown[] = []
  queue.on('failed', (error, _message, attempt) => failed.push({ message: error.message, attempt }))
  queue.on('dead-letter', (letter) => deadLetters.push(letter))
  await queue.start()
  return { queue, failed, deadLetters }
}

describe('run()', () => {
  it("resolves with the handler's return value, sync or async", async () => {
    const { queue } = await startQueue()
    const value = { a: 1, list: [1, 'two', { three: [3, null, true] }], text: 'ü€😀' }
    expect(await queue.run({ op: 'echo', value })).toEqual(value)
    expect(await queue.run({ op: 'echo', value: 42 })).toBe(42)
    expect(await queue.run({ op: 'echo', value: 'text' })).toBe('text')
    expect(await queue.run({ op: 'echo', value: null })).toBe(null)
    expect(await queue.run({ op: 'undefined' })).toBeUndefined()
    expect(await queue.run({ op: 'async', ms: 20, value })).toMatchObject({ value, attempt: 1 })
    // Results cross as v8 structured data whatever the codec: Map, Set, Date, BigInt, bytes…
    const rich = await queue.run<Record<string, unknown>>({ op: 'rich' })
    expect(rich.map).toEqual(new Map([[1, { a: 'x' }]]))
    expect(rich.set).toEqual(new Set(['a', 'b']))
    expect(rich.date).toEqual(new Date(86_400_000))
    expect(rich.big).toBe(2n ** 70n)
    expect([...(rich.bytes as Uint8Array)]).toEqual([1, 2, 3])
    expect(rich.nested).toEqual({ deeper: { deepest: [null, true, -0, Number.NaN, 'ü€😀'] } })
    expect('missing' in rich).toBe(true)
  })

  it('answers many concurrent callers each with their own result', async () => {
    const { queue } = await startQueue()
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        i % 7 === 0
          ? queue.run({ op: 'async', ms: 0, value: i }).then((r) => (r as { value: number }).value)
          : queue.run<number>({ op: 'echo', value: i }),
      ),
    )
    expect(results).toEqual(Array.from({ length: 2000 }, (_, i) => i))
  })

  it("rejects with the handler's error after the retries, and only then", async () => {
    const { queue, failed, deadLetters } = await startQueue()
    const err = await rejection(queue.run({ op: 'throw', text: 'no way' }))
    expect(err.message).toBe('no way')
    expect(failed).toEqual([1, 2, 3].map((attempt) => ({ message: 'no way', attempt })))
    const asyncErr = await rejection(queue.run({ op: 'throw-async', text: 'later' }))
    expect(asyncErr.message).toBe('later')
    // name and code survive the trip; a thrown non-Error is described.
    const custom = await rejection(queue.run({ op: 'throw-custom', text: 'custom' }))
    expect(custom).toMatchObject({ name: 'CustomError', message: 'custom', code: 'E_CUSTOM' })
    expect(custom.stack).toContain('CustomError')
    const str = await rejection(queue.run({ op: 'throw-string', text: 'oops' }))
    expect(str.message).toContain('oops')
    // A retry that succeeds resolves.
    expect(await queue.run({ op: 'flaky', okAt: 3 })).toEqual({ attempt: 3 })
    expect(await queue.run({ op: 'flaky', okAt: 2 })).toEqual({ attempt: 2 })
    // run() failures reject the caller: they are not dead letters.
    expect(deadLetters).toEqual([])
    expect(queue.stats()).toMatchObject({ rejected: 4, deadLettered: 0, failed: 12 + 3 })
  })

  it('rejects with RESULT_ENCODE_FAILED when the result cannot be serialized', async () => {
    const { queue, failed } = await startQueue()
    for (const op of ['function', 'nested-function']) {
      const err = await rejection(queue.run({ op }))
      expect(err.code).toBe('RESULT_ENCODE_FAILED')
      expect(err.message).toContain('could not be serialized')
    }
    expect(failed).toEqual([]) // not a handler error: no retries, no 'failed'
    expect(queue.stats().rejected).toBe(2)
    // The lane goes on.
    expect(await queue.run({ op: 'echo', value: 1 })).toBe(1)
  })

  // Errors come back from the worker serialized; conveyor's own codes (RESULT_ENCODE_FAILED)
  // must be rebuilt as ConveyorErrors, as src/errors.ts promises.
  it('RESULT_ENCODE_FAILED is a ConveyorError', async () => {
    const { queue } = await startQueue()
    const err = await rejection(queue.run({ op: 'function' }))
    expect(isConveyorError(err, 'RESULT_ENCODE_FAILED')).toBe(true)
  })

  it('keeps results matched to callers while pushes fail and dead-letter in between', async () => {
    const { queue, deadLetters } = await startQueue()
    let nacks = 0
    let acks = 0
    const runs: Promise<unknown>[] = []
    for (let i = 0; i < 300; i++) {
      if (i % 3 === 0) {
        await queue.push({ op: 'throw', text: `push ${i}` }, { nack: () => nacks++ })
      } else if (i % 3 === 1) {
        await queue.push({ op: 'echo', value: i }, { ack: () => acks++ })
      }
      runs.push(queue.run(i % 5 === 0 ? { op: 'flaky', okAt: 2 } : { op: 'echo', value: i }))
    }
    const results = await Promise.all(runs)
    results.forEach((r, i) => {
      expect(r).toEqual(i % 5 === 0 ? { attempt: 2 } : i)
    })
    await waitFor(() => nacks === 100 && acks === 100, 'the pushes to settle')
    expect(deadLetters).toHaveLength(100)
  })
})
