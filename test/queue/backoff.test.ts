import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, rejection, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

describe("a handler's own backoff()", () => {
  it('is called after each failed attempt with its number and error', async () => {
    const calls = new SharedArrayBuffer(4 * 16)
    const queue = makeQueue({
      handler: fixture('backoff.mjs'),
      threads: 1,
      retry: { attempts: 4 },
      workerData: { calls },
    })
    await queue.start()
    expect(await queue.run({ id: 1, fail: 3 })).toBe(4)
    expect([...new Int32Array(calls).slice(0, 4)]).toEqual([3, 1, 2, 3])
  })

  it('returning a bad delay gives the message up, with an error that says so', async () => {
    const queue = makeQueue({
      handler: fixture('backoff.mjs'),
      threads: 1,
      retry: { attempts: 4 },
      workerData: { calls: new SharedArrayBuffer(4 * 16) },
    })
    await queue.start()
    const err = await rejection(queue.run({ id: 2, fail: 3, bad: true }))
    expect(err.message).toMatch(/backoff\(\) must return a finite number/)
    const letters: Error[] = []
    queue.on('dead-letter', ({ error }) => letters.push(error))
    let acked = false
    await queue.push({ id: 3, fail: 1, bad: true }, { ack: () => (acked = true) })
    await queue.onIdle()
    expect(acked).toBe(false)
    expect(letters.map((e) => e.message)).toEqual([
      "the handler's backoff() must return a finite number of ms ≥ 0, got -1",
    ])
  })
})
