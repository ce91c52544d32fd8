import { describe, expect, it } from 'vitest'
import type { Queue } from '../../dist/src/index.js'
import { fixture, makeQueue, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

const KEYS = 5

describe('threads: { min, max } (the thread controller drives resize())', () => {
  it('sheds lanes a slow producer leaves idle, says why, and keeps every message in key order', async () => {
    const journal = new Int32Array(new SharedArrayBuffer(4 * 20_480))
    const queue = makeQueue({
      handler: fixture('edge-journal.mjs'),
      threads: { min: 1, max: 4 },
      ordering: 'key',
      workerData: { journal: journal.buffer },
    }) as Queue<{ id: number }>
    const changes: { count: number; reason: string | undefined }[] = []
    queue.on('threads', (count, reason) => changes.push({ count, reason }))
    await queue.start()
    const started = queue.stats().threads
    // A trickle: lanes are idle almost all the time, the backlog never grows.
    let id = 0
    while (changes.length < 2 && id < 20_000) {
      for (let i = 0; i < 8; i++, id++) await queue.push({ id }, { key: id % KEYS })
      await sleep(2)
    }
    await queue.onIdle()
    const stats = queue.stats()
    expect(stats.autoscale).toBeDefined()
    expect(stats.autoscale!.decisions.length).toBeGreaterThan(0)
    for (const d of stats.autoscale!.decisions) expect(d.reason).toMatch(/\d/)
    // The first event is the start; the controller's own carry its reason.
    expect(changes[0]).toEqual({ count: started, reason: undefined })
    expect(changes.length).toBeGreaterThanOrEqual(2)
    expect(changes[1].count).toBeLessThan(started)
    expect(changes[1].reason).toMatch(/starved|busy|probe|trying/)
    for (const c of changes) expect(c.count).toBeGreaterThanOrEqual(1)
    // Nothing lost, per-key order kept across the resizes.
    const order = Array.from(journal.subarray(1, 1 + Atomics.load(journal, 0)))
    expect(order).toHaveLength(id)
    for (let k = 0; k < KEYS; k++) {
      const ofKey = order.filter((n) => n % KEYS === k)
      expect(ofKey).toEqual([...ofKey].sort((a, b) => a - b))
    }
    expect(stats.completed).toBe(id)
  })

  it('a fixed count has no controller', async () => {
    const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 1 })
    await queue.start()
    await waitFor(() => queue.stats().uptimeMs > 600, 'a few windows')
    expect(queue.stats().autoscale).toBeUndefined()
    expect(queue.stats().threads).toBe(1)
  })
})
