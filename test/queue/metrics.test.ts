import { describe, expect, it } from 'vitest'
import type { MessageSample, QueueMetrics } from '../../dist/src/index.js'
import { fixture, makeQueue, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

/** Histograms keep 3 significant digits: allow their rounding when comparing two of them. */
const ROUNDING = 1 + 2e-3

function expectSane(m: QueueMetrics, count: number) {
  expect(m.dropped).toBe(0)
  for (const h of [m.latency, m.wait, m.service]) {
    expect(h.count).toBe(count)
    expect(h.min).toBeLessThanOrEqual(h.p50)
    expect(h.p50).toBeLessThanOrEqual(h.p90)
    expect(h.p90).toBeLessThanOrEqual(h.p99)
    expect(h.p99).toBeLessThanOrEqual(h.max)
  }
  // Per sample, wait + service ≤ latency: so for every statistic of the distributions.
  for (const k of ['min', 'p50', 'p90', 'p99', 'max', 'mean'] as const) {
    expect(m.service[k]).toBeLessThanOrEqual(m.latency[k] * ROUNDING)
    expect(m.wait[k]).toBeLessThanOrEqual(m.latency[k] * ROUNDING)
  }
  expect(m.wait.mean + m.service.mean).toBeLessThanOrEqual(m.latency.mean * ROUNDING)
}

describe('queue.metrics()', () => {
  it('measures one message in 16: latency, queue wait and service time', async () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    await queue.start()
    const before = queue.metrics()
    expect(before).toMatchObject({ sampleEvery: 16, dropped: 0, latency: { count: 0 } })
    for (let i = 0; i < 1600; i++) await queue.push({ spinUs: 100 })
    // run() results settle from the completion ring: sampled all the same.
    await Promise.all(Array.from({ length: 32 }, () => queue.run({ spinUs: 100 })))
    await queue.onIdle()
    // A run() settles with its result; its sample comes with the RELEASE just after.
    await waitFor(() => queue.metrics().latency.count === 102, 'the last sample')
    const m = queue.metrics()
    expectSane(m, (1600 + 32) / 16)
    // Each handler call busy-waited 100 µs.
    expect(m.service.min).toBeGreaterThanOrEqual(0.1)
    expect(m.windowMs).toBeGreaterThan(before.windowMs)
    // stats() keeps its latency percentiles from the same samples.
    expect(queue.stats().latencyMs.samples).toBe(m.latency.count)
  })

  it('starts a new window on reset', async () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    await queue.start()
    for (let i = 0; i < 320; i++) await queue.push({})
    await queue.onIdle()
    expect(queue.metrics({ reset: true }).latency.count).toBe(20)
    expect(queue.metrics().latency.count).toBe(0)
    for (let i = 0; i < 160; i++) await queue.push({})
    await queue.onIdle()
    expectSane(queue.metrics(), 10)
    // stats() is no window: it still has every sample.
    expect(queue.stats().latencyMs.samples).toBe(30)
  })

  it('times every attempt of a sampled message, backoff included, and drops one that killed its worker', async () => {
    const queue = makeQueue({
      handler: fixture('timed.mjs'),
      threads: 1,
      retry: { attempts: 2, backoffMs: 30, jitter: false },
    })
    const dead: unknown[] = []
    queue.on('dead-letter', ({ message }) => dead.push(message))
    await queue.start()
    // The 16th message of the lane is sampled: it fails twice, 30 ms apart, then gives up.
    for (let i = 0; i < 15; i++) await queue.push({})
    await queue.push({ fail: true })
    await queue.onIdle()
    // Dead-lettered from the completion ring; its sample comes with the RELEASE just after.
    await waitFor(() => queue.metrics().service.count === 1, 'the sample of the failed message')
    let m = queue.metrics()
    expect(m.service.count).toBe(1)
    expect(m.service.min).toBeGreaterThanOrEqual(30)
    // The 32nd kills its worker twice (retry.attempts): dead-lettered, never measured.
    for (let i = 0; i < 15; i++) await queue.push({})
    await queue.push({ exit: true })
    await queue.onIdle()
    m = queue.metrics()
    expect(m.dropped).toBe(1)
    expect(m.service.count).toBe(1)
    expect(dead).toEqual([{ fail: true }, { exit: true }])
    // The replacement worker posts where the dead one left off.
    for (let i = 0; i < 16; i++) await queue.push({})
    await queue.onIdle()
    expect(queue.metrics()).toMatchObject({ dropped: 1, service: { count: 2 } })
  })

  it('tells onSample observers every sample, fenced, until they unsubscribe', async () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 2 })
    const errors: Error[] = []
    queue.on('error', (err) => errors.push(err))
    const samples: MessageSample[] = []
    const unsubscribe = queue.onSample((s) => samples.push(s))
    queue.onSample(() => {
      throw new Error('observer bug')
    })
    await queue.start()
    let acked = 0
    for (let i = 0; i < 640; i++) await queue.push({ spinUs: 20 }, { ack: () => acked++ })
    await queue.onIdle()
    expect(acked).toBe(640)
    const m = queue.metrics()
    expect(samples).toHaveLength(m.latency.count)
    // Per lane, one in 16 of what it got: 640 / 16 in all, less a partial 16 per lane.
    expect(samples.length).toBeGreaterThanOrEqual(640 / 16 - 2)
    expect(samples.length).toBeLessThanOrEqual(640 / 16)
    expect(errors).toHaveLength(samples.length)
    expect(new Set(samples.map((s) => s.lane))).toEqual(new Set([0, 1]))
    for (const s of samples) {
      expect(s.serviceMs).toBeGreaterThanOrEqual(0.02)
      expect(s.waitMs + s.serviceMs).toBeLessThanOrEqual(s.latencyMs)
    }
    unsubscribe()
    const seen = samples.length
    for (let i = 0; i < 64; i++) await queue.push({})
    await queue.onIdle()
    expect(samples).toHaveLength(seen)
  })

  it('rejects options and observers of the wrong shape with INVALID_OPTION', () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    expect(() => queue.metrics({ reset: 'yes' } as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    )
    expect(() => queue.onSample(undefined as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    )
  })
})
