import { afterEach, describe, expect, it, vi } from 'vitest'
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

  it('untilDue() and skip() pick the same records as due() one by one, across stretches', () => {
    const one = lane().samples
    const many = lane().samples
    const picked: number[] = []
    const stretchPicked: number[] = []
    let written = 0
    for (const stretch of [1, 5, 16, 15, 17, 40, 3, 64]) {
      for (let i = 0; i < stretch; i++) if (one.due()) picked.push(written + i)
      let until = many.untilDue()
      for (let i = 0; i < stretch; i++) {
        if (--until === 0) {
          stretchPicked.push(written + i)
          until = many.interval
        }
      }
      many.skip(stretch)
      written += stretch
    }
    expect(picked.length).toBe(Math.floor(written / SAMPLE_EVERY))
    expect(stretchPicked).toEqual(picked)
  })

  describe('on a busy lane', () => {
    afterEach(() => {
      vi.restoreAllMocks()
    })

    /** Writes `records` records `gapMs` apart (on a fake clock); the indices sampled. */
    function write(samples: LaneSamples, clock: { now: number }, records: number, gapMs: number) {
      const picked: number[] = []
      for (let i = 0; i < records; i++) {
        clock.now += gapMs
        if (samples.due()) {
          picked.push(i)
          samples.expect(8 * (i + 1))
          // Collected at once, as a lane that keeps up would: the expect queue stays short.
          samples.collect(8 * (i + 1))
        }
      }
      return picked
    }

    it('samples a flooded lane about once per 0.1 ms, down to one record in 1024', () => {
      const clock = { now: 1000 }
      vi.spyOn(performance, 'now').mockImplementation(() => clock.now)
      const { samples } = lane()
      // 10 M records/s: one in 16 would be a sample every 1.6 µs.
      const picked = write(samples, clock, 100_000, 0.0001)
      expect(samples.interval).toBe(1024)
      const gaps = picked.slice(1).map((at, i) => at - picked[i])
      expect(gaps.slice(-10)).toEqual(new Array(10).fill(1024))
      // Every gap is a power of two between the two bounds, and never shrinks on a steady flood.
      for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(gaps[i - 1])
      // One in 16 until 64 samples in a row came dense (~1024 records), then thinner each time.
      expect(gaps.slice(0, 65)).toEqual(new Array(65).fill(SAMPLE_EVERY))
      expect(gaps.slice(65, 71)).toEqual([32, 64, 128, 256, 512, 1024])
    })

    it('keeps one in 16 for a burst of 1000 records, whatever their pace', () => {
      const clock = { now: 1000 }
      vi.spyOn(performance, 'now').mockImplementation(() => clock.now)
      const { samples } = lane()
      expect(write(samples, clock, 1008, 0.0001)).toHaveLength(1008 / SAMPLE_EVERY)
      expect(samples.interval).toBe(SAMPLE_EVERY)
    })

    it('holds an interval whose samples are 0.1 to 0.4 ms apart, and returns to 16 when slow', () => {
      const clock = { now: 1000 }
      vi.spyOn(performance, 'now').mockImplementation(() => clock.now)
      const { samples } = lane()
      // 1 M records/s: one in 128 or 256 is 0.128 or 0.256 ms apart, inside the band.
      write(samples, clock, 50_000, 0.001)
      expect([128, 256]).toContain(samples.interval)
      // 10 k records/s: one in 16 is 1.6 ms apart; the interval halves on each sample.
      const picked = write(samples, clock, 1000, 0.1)
      expect(samples.interval).toBe(SAMPLE_EVERY)
      const last = picked.slice(-4)
      expect(last.slice(1).map((at, i) => at - last[i])).toEqual(new Array(3).fill(SAMPLE_EVERY))
    })
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
