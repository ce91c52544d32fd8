import { EventEmitter } from 'node:events'
import { createHistogram } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { SAMPLE_EVERY } from '../../src/lane/sample-mailbox.js'
import { EventFence } from '../../src/queue/events.js'
import { Measurements, type MessageSample, summarize } from '../../src/queue/metrics.js'

/** Histograms keep 3 significant digits: a recorded value reads back within 0.1%. */
function near(actual: number, expected: number) {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * 1e-3)
}

function measurements() {
  const emitter = new EventEmitter()
  const errors: Error[] = []
  emitter.on('error', (err: Error) => errors.push(err))
  return { m: new Measurements(new EventFence(emitter)), errors }
}

describe('histogram summaries', () => {
  it('are all zeros for an empty histogram (not perf_hooks NaN and 2^63)', () => {
    expect(summarize(createHistogram())).toEqual({
      count: 0,
      min: 0,
      max: 0,
      mean: 0,
      stddev: 0,
      p50: 0,
      p90: 0,
      p99: 0,
    })
  })

  it('report milliseconds of a histogram kept in nanoseconds', () => {
    const h = createHistogram()
    // 1..100 ms
    for (let ms = 1; ms <= 100; ms++) h.record(ms * 1e6)
    const s = summarize(h)
    expect(s.count).toBe(100)
    near(s.min, 1)
    near(s.max, 100)
    near(s.mean, 50.5)
    near(s.stddev, Math.sqrt((100 * 100 - 1) / 12))
    near(s.p50, 50)
    near(s.p90, 90)
    near(s.p99, 99)
  })
})

describe('Measurements', () => {
  it('records each sample in the three histograms, in milliseconds', () => {
    const { m } = measurements()
    m.reset()
    m.sampled(0, 10, 4, 5)
    m.sampled(1, 20, 8, 10)
    const got = m.snapshot(undefined)
    expect(got.sampleEvery).toBe(SAMPLE_EVERY)
    expect(got.dropped).toBe(0)
    for (const s of [got.latency, got.wait, got.service]) expect(s.count).toBe(2)
    near(got.latency.min, 10)
    near(got.latency.max, 20)
    near(got.wait.mean, 6)
    near(got.service.max, 10)
  })

  it('keeps sub-microsecond times, and counts a time under 1 ns as 1 ns', () => {
    const { m } = measurements()
    m.sampled(0, 0.000_25, 0, 0.000_000_1)
    const got = m.snapshot(undefined)
    near(got.latency.max, 0.000_25)
    expect(got.wait.max).toBe(1e-6)
    expect(got.service.max).toBe(1e-6)
  })

  it('counts dropped samples apart from the histograms', () => {
    const { m } = measurements()
    m.sampleDropped()
    m.sampleDropped()
    const got = m.snapshot(undefined)
    expect(got.dropped).toBe(2)
    expect(got.latency.count).toBe(0)
  })

  it('reset: the read returns the old window, the next read a fresh one', () => {
    const { m } = measurements()
    m.reset()
    m.sampled(0, 10, 1, 1)
    m.sampleDropped()
    const first = m.snapshot({ reset: true })
    expect(first.latency.count).toBe(1)
    expect(first.dropped).toBe(1)
    const second = m.snapshot({})
    expect(second.latency.count).toBe(0)
    expect(second.dropped).toBe(0)
    expect(second.windowMs).toBeLessThanOrEqual(first.windowMs + 1)
    m.sampled(0, 30, 1, 1)
    const third = m.snapshot({ reset: false })
    expect(third.latency.count).toBe(1)
    near(third.latency.min, 30)
    // Without reset, nothing was cleared.
    expect(m.snapshot(undefined).latency.count).toBe(1)
  })

  it('has an empty window before start()', () => {
    const { m } = measurements()
    expect(m.snapshot(undefined).windowMs).toBe(0)
  })

  it('rejects options of the wrong shape with INVALID_OPTION', () => {
    const { m } = measurements()
    expect(() => m.snapshot('reset' as never)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(/reset/) }),
    )
    expect(() => m.snapshot({ reset: 1 } as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/true or false/),
      }),
    )
  })

  it('tells observers each sample until they unsubscribe', () => {
    const { m } = measurements()
    const seen: MessageSample[] = []
    const unsubscribe = m.subscribe((s) => seen.push(s))
    m.sampled(3, 10, 4, 5)
    unsubscribe()
    m.sampled(3, 11, 4, 5)
    expect(seen).toEqual([{ lane: 3, latencyMs: 10, waitMs: 4, serviceMs: 5 }])
    // Unsubscribing twice is harmless.
    unsubscribe()
  })

  it('calls a function subscribed twice twice, and unsubscribes each on its own', () => {
    const { m } = measurements()
    let calls = 0
    const observer = () => calls++
    const first = m.subscribe(observer)
    m.subscribe(observer)
    m.sampled(0, 1, 0, 1)
    first()
    m.sampled(0, 1, 0, 1)
    expect(calls).toBe(3)
  })

  it('fences a throwing observer: reported on error, the others and the histograms go on', () => {
    const { m, errors } = measurements()
    const seen: number[] = []
    m.subscribe(() => {
      throw new Error('observer bug')
    })
    m.subscribe((s) => seen.push(s.latencyMs))
    m.sampled(0, 7, 1, 1)
    m.sampled(0, 8, 1, 1)
    expect(seen).toEqual([7, 8])
    expect(errors.map((e) => e.message)).toEqual(['observer bug', 'observer bug'])
    expect(m.snapshot(undefined).latency.count).toBe(2)
  })

  it('does not skip an observer when another unsubscribes during a call', () => {
    const { m } = measurements()
    const seen: string[] = []
    let unsubscribeB = () => {}
    m.subscribe(() => {
      seen.push('a')
      unsubscribeB()
    })
    unsubscribeB = m.subscribe(() => seen.push('b'))
    m.sampled(0, 1, 0, 1)
    m.sampled(0, 1, 0, 1)
    expect(seen).toEqual(['a', 'b', 'a'])
  })

  it('rejects an observer that is not a function with INVALID_OPTION', () => {
    const { m } = measurements()
    expect(() => m.subscribe('nope' as never)).toThrow(
      expect.objectContaining({
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/function/),
      }),
    )
  })
})
