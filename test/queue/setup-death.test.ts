import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('workers that die during setup after a restart', () => {
  it('are restarted with a delay and blame no message; the lane then goes on', async () => {
    const flags = new SharedArrayBuffer(8)
    const queue = makeQueue({
      handler: fixture('setup-flaky.mjs'),
      threads: 1,
      retry: { attempts: 2, backoffMs: 1 },
      workerData: { flags, setupDeaths: 3 },
    })
    const errors: (Error & { code?: string })[] = []
    const dead: unknown[] = []
    queue.on('error', (e) => errors.push(e))
    queue.on('dead-letter', ({ message }) => dead.push(message))
    await queue.start()
    const acked: string[] = []
    for (const m of ['a', 'crash-once', 'b', 'c']) await queue.push(m, { ack: () => acked.push(m) })
    await waitFor(() => acked.length === 4, 'every message to be acked', 20_000)
    const view = new Int32Array(flags)
    expect(view[1]).toBe(3) // three workers died in setup
    // With attempts 2, blaming the suspect for setup deaths would have dead-lettered it.
    expect(dead).toEqual([])
    expect(acked).toEqual(['a', 'crash-once', 'b', 'c'])
    expect(errors.map((e) => e.code)).toEqual(['WORKER_DIED', 'WORKER_DIED', 'WORKER_DIED'])
    expect(queue.stats().lanes[0].restarts).toBe(4)
    const report = await queue.stop()
    expect(report).toMatchObject({ pushed: 4, completed: 4, deadLettered: 0 })
  })
})
