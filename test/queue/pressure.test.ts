import { describe, expect, it } from 'vitest'
import type { Queue } from '../../dist/src/index.js'
import { fixture, makeQueue, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

type Info = { reason: 'user' | 'backlog'; fill: number }
type Flow = { event: 'pause' | 'resume'; info: Info }

function record(queue: Queue): Flow[] {
  const flow: Flow[] = []
  queue.on('pause', (info) => flow.push({ event: 'pause', info }))
  queue.on('resume', (info) => flow.push({ event: 'resume', info }))
  return flow
}

const HIGH = 0.8
const LOW = 0.3

describe('pause / resume', () => {
  it("emits 'pause' (backlog) past the high watermark and 'resume' only below the low one", async () => {
    // Tiny records (string codec, 1 byte: 16 bytes a record, 256 a lane) so the worker's
    // RELEASE (every 64 records) walks the backlog down through the band between the marks.
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 2,
      laneBytes: 4096,
      codec: 'string',
      watermarks: { high: HIGH, low: LOW },
      workerData: { spinUs: 150 },
    })
    const flow = record(queue)
    await queue.start()
    let acks = 0
    let paused = false
    queue.on('pause', (info) => {
      if (info.reason === 'backlog') paused = true
    })
    queue.on('resume', (info) => {
      if (info.reason === 'backlog') paused = false
    })
    /** Backlog fill sampled while the queue held its 'pause' (between the two events). */
    const inBand: number[] = []
    let samples = 0
    const sampler = setInterval(() => {
      if (!paused) return
      const s = queue.stats()
      const fill = s.backlogBytes / s.lanes.reduce((n, l) => n + l.capacityBytes, 0)
      samples++
      if (fill > LOW && fill < HIGH) inBand.push(fill)
    }, 1)
    try {
      // A well-behaved source: stops fetching on 'pause', fetches again on 'resume'.
      const N = 3000
      for (let id = 0; id < N; id++) {
        while (paused) await sleep(1)
        await queue.push('x', { ack: () => acks++ })
      }
      await waitFor(() => acks === N, 'every message to be handled')
      await waitFor(() => flow.at(-1)?.event === 'resume', "the last 'resume'", 5000)
    } finally {
      clearInterval(sampler)
    }
    const summary = JSON.stringify(flow)
    expect(flow.length, summary).toBeGreaterThanOrEqual(4)
    flow.forEach((f, i) => {
      expect(f.info.reason, summary).toBe('backlog')
      expect(f.event, `event ${i}: ${summary}`).toBe(i % 2 === 0 ? 'pause' : 'resume')
      if (f.event === 'pause') expect(f.info.fill, summary).toBeGreaterThanOrEqual(HIGH)
      else expect(f.info.fill, summary).toBeLessThanOrEqual(LOW)
    })
    // The backlog did pass through the band between the marks while paused, without a
    // 'resume': that is the hysteresis (no flapping around one threshold).
    expect(samples).toBeGreaterThan(0)
    expect(inBand.length).toBeGreaterThan(0)
  })

  it("pause() / resume() emit reason 'user' and hold pushes meanwhile", async () => {
    // One lane: acks come in write order.
    const queue = makeQueue({ handler: fixture('work.mjs'), threads: 1 })
    const flow = record(queue)
    await queue.start()
    let acks = 0
    const ackOrder: number[] = []
    await queue.push({ id: -1 }, { ack: () => acks++ })
    await waitFor(() => acks === 1, 'the first ack')

    queue.pause()
    queue.pause() // idempotent: one event
    expect(queue.isPaused).toBe(true)
    const accepted: number[] = []
    const pushes = Array.from({ length: 10 }, (_, id) =>
      queue
        .push(
          { id },
          {
            ack: () => {
              ackOrder.push(id)
              acks++
            },
          },
        )
        .then(() => accepted.push(id)),
    )
    await sleep(100)
    expect(accepted).toEqual([])
    expect(acks).toBe(1)
    expect(queue.stats()).toMatchObject({ pushed: 1, waiting: 10 })

    queue.resume()
    queue.resume() // idempotent
    expect(queue.isPaused).toBe(false)
    await Promise.all(pushes)
    // (The push promises do not resolve in push order — see the report — but the messages
    // enter the lane in push order.)
    expect(accepted.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    await waitFor(() => acks === 11, 'the held messages to be handled')
    expect(ackOrder).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(queue.stats()).toMatchObject({ pushed: 11, waiting: 0 })

    const user = flow.filter((f) => f.info.reason === 'user')
    expect(user.map((f) => f.event)).toEqual(['pause', 'resume'])
  })
})
