import { describe, expect, it } from 'vitest'
import { runProducers } from '../../dist/src/index.js'
import { fixture, makeQueue, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('runProducers() (go-zero producer shape)', () => {
  it('pushes what produce() returns, idles on nothing, and settles every message', async () => {
    const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 2 })
    await queue.start()
    let acked = 0
    let dead = 0
    queue.on('dead-letter', () => dead++)
    const N = 3000
    let next = 0
    let empties = 0
    const controller = new AbortController()
    const running = runProducers(
      queue,
      () => ({
        produce() {
          if (next < N) return { n: next++ }
          empties++
          return undefined
        },
      }),
      { producers: 3, idleMs: 2, signal: controller.signal },
    )
    await waitFor(() => queue.stats().completed >= N, 'all produced messages to complete')
    controller.abort()
    const { produced } = await running
    acked = queue.stats().completed
    expect(produced).toBe(N)
    expect(acked).toBe(N)
    expect(empties).toBeGreaterThan(0)
    expect(dead).toBe(0)
  })

  it('tells producers to pause past the high watermark and resume below the low one', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 1,
      laneBytes: 4096,
      workerData: { spinUs: 200 },
    })
    await queue.start()
    const calls: string[] = []
    let n = 0
    const controller = new AbortController()
    const running = runProducers(
      queue,
      () => ({
        produce: () => (n < 400 ? { n: n++, pad: 'x'.repeat(40) } : undefined),
        onProducerPause: () => calls.push('pause'),
        onProducerResume: () => calls.push('resume'),
      }),
      { signal: controller.signal, idleMs: 5 },
    )
    await waitFor(() => queue.stats().completed >= 400, 'the backlog to drain')
    controller.abort()
    await running
    expect(calls[0]).toBe('pause')
    expect(calls).toContain('resume')
    // Strictly alternating: hysteresis, no flapping.
    for (const [i, c] of calls.entries()) expect(c).toBe(i % 2 === 0 ? 'pause' : 'resume')
  })

  it('hands a message the stopping queue refused back to its producer', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 1,
      laneBytes: 4096,
      workerData: { spinUs: 2000 },
      // 'pause' only once a push already waits for room, 'resume' as soon as one left.
      watermarks: { high: 1, low: 0.99 },
    })
    await queue.start()
    const refused: unknown[] = []
    let n = 0
    const running = runProducers(queue, () => ({
      produce: () => ({ n: n++ }),
      refused: (message) => refused.push(message),
    }))
    await waitFor(() => queue.stats().waiting > 0, 'a produced message to wait for room')
    const report = await queue.stop({ timeoutMs: 50 })
    const { produced } = await running
    // Every produced message is accounted for: accepted (and then settled or handed back by
    // stop()), or refused to its producer.
    expect(produced).toBe(report.pushed)
    expect(report.completed + report.unprocessed.length).toBe(report.pushed)
    expect(refused.length).toBeGreaterThanOrEqual(1)
    expect(produced + refused.length).toBe(n)
  })
})
