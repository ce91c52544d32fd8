import { describe, expect, it } from 'vitest'
import { SAMPLES_AT, statsBytes } from '../../src/lane/protocol.js'
import { SAMPLE_EVERY, SampleMailboxWriter, sampleSlots } from '../../src/lane/sample-mailbox.js'
import { LaneSamples, type SampleSink } from '../../src/queue/lane-samples.js'

interface Sampled {
  lane: number
  latencyMs: number
  waitMs: number
  serviceMs: number
}

/** A lane's samples with a worker's mailbox writer beside it, as the two threads have them. */
function lane(ringCapacity = 4096) {
  const stats = new SharedArrayBuffer(statsBytes(ringCapacity))
  const sampled: Sampled[] = []
  let dropped = 0
  const sink: SampleSink = {
    sampled: (lane, latencyMs, waitMs, serviceMs) =>
      sampled.push({ lane, latencyMs, waitMs, serviceMs }),
    sampleDropped: () => dropped++,
  }
  const samples = new LaneSamples(7, stats, ringCapacity, sink)
  return {
    samples,
    worker: () => new SampleMailboxWriter(stats, SAMPLES_AT),
    sampled,
    dropped: () => dropped,
  }
}

describe('LaneSamples', () => {
  it('samples one record in SAMPLE_EVERY', () => {
    const { samples } = lane()
    const due = Array.from({ length: 5 * SAMPLE_EVERY }, () => samples.due())
    expect(due.filter(Boolean)).toHaveLength(5)
    expect(due.indexOf(true)).toBe(SAMPLE_EVERY - 1)
  })

  it('measures each expected record once RELEASE passes it, and not before', () => {
    const { samples, worker, sampled } = lane()
    const w = worker()
    const pushedAt = performance.now()
    samples.expect(64)
    samples.expect(128)
    w.post(64, performance.now(), 0)
    samples.collect(63)
    expect(sampled).toEqual([])
    samples.collect(64)
    expect(sampled).toHaveLength(1)
    w.post(128, performance.now(), 0)
    samples.collect(200)
    expect(sampled).toHaveLength(2)
    const elapsed = performance.now() - pushedAt
    for (const s of sampled) {
      expect(s.lane).toBe(7)
      expect(s.latencyMs).toBeGreaterThanOrEqual(0)
      expect(s.latencyMs).toBeLessThanOrEqual(elapsed)
    }
  })

  it('keeps wait + service within latency, and wait ≥ 0, whatever the clocks said', () => {
    const { samples, worker, sampled } = lane()
    const w = worker()
    // A start "before the push" (a time origin a little off) and one "after it was seen done".
    samples.expect(64)
    w.post(64, performance.now() - 1000, 0.5)
    samples.expect(128)
    w.post(128, performance.now() + 1000, 0)
    samples.collect(128)
    expect(sampled).toHaveLength(2)
    const [early, late] = sampled
    expect(early.waitMs).toBe(0)
    expect(early.serviceMs).toBe(0.5)
    expect(late.waitMs).toBe(late.latencyMs - late.serviceMs)
  })

  it('drops a record whose worker died handling it, and pairs the next one', () => {
    const { samples, worker, sampled, dropped } = lane()
    samples.expect(64)
    samples.expect(128)
    // 64's worker died: its replacement handled 128 only (64 was dead-lettered).
    worker().post(128, performance.now(), 2)
    samples.collect(128)
    expect(dropped()).toBe(1)
    expect(sampled.map((s) => s.serviceMs)).toEqual([2])
  })

  it('matches end cursors across 2^32', () => {
    const { samples, worker, sampled } = lane()
    const w = worker()
    const ends = [2 ** 32 - 8, 0, 8].map((e) => e | 0)
    for (const end of ends) samples.expect(end)
    for (const [i, end] of ends.entries()) w.post(end, performance.now(), i)
    samples.collect(2 ** 32 - 16)
    expect(sampled).toHaveLength(0)
    samples.collect(0)
    expect(sampled).toHaveLength(2)
    samples.collect(8)
    expect(sampled.map((s) => s.serviceMs)).toEqual([0, 1, 2])
  })

  it('drops the oldest expectation rather than overflow', () => {
    const { samples, dropped } = lane()
    const slots = sampleSlots(4096)
    for (let i = 1; i <= slots + 2; i++) samples.expect(8 * i)
    expect(dropped()).toBe(2)
  })
})
