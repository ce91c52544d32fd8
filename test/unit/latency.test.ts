import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LatencySampler } from '../../src/queue/stats.js'

const WINDOW = 4096

function shuffled(values: number[]): number[] {
  const out = [...values]
  // A fixed LCG keeps the order arbitrary but the test deterministic.
  let s = 12345
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

function sampler(values: number[]): LatencySampler {
  const s = new LatencySampler()
  for (const v of values) s.add(v)
  return s
}

describe('LatencySampler', () => {
  it('reports zeros before any sample', () => {
    expect(new LatencySampler().percentiles()).toEqual({
      samples: 0,
      p50: 0,
      p90: 0,
      p99: 0,
      max: 0,
    })
  })

  it('reports a single sample as every percentile', () => {
    expect(sampler([7.5]).percentiles()).toEqual({
      samples: 1,
      p50: 7.5,
      p90: 7.5,
      p99: 7.5,
      max: 7.5,
    })
  })

  it('gives the percentiles of 1..100, whatever the order they came in', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1)
    // Index floor(q·n) of the sorted samples: the sample just above the q quantile.
    const expected = { samples: 100, p50: 51, p90: 91, p99: 100, max: 100 }
    expect(sampler(values).percentiles()).toEqual(expected)
    expect(sampler(values.reverse()).percentiles()).toEqual(expected)
    expect(sampler(shuffled(values)).percentiles()).toEqual(expected)
  })

  it('sorts numerically, not as text', () => {
    const stats = sampler([9, 10, 100, 2, 1000, 30]).percentiles()
    expect(stats.max).toBe(1000)
    expect(stats.p50).toBe(30)
  })

  it('keeps fractional milliseconds', () => {
    expect(sampler([0.25, 0.125, 0.5]).percentiles()).toMatchObject({ p50: 0.25, max: 0.5 })
  })

  it(`keeps only the last ${WINDOW} samples`, () => {
    const values = Array.from({ length: 5000 }, (_, i) => i + 1)
    const stats = sampler(values).percentiles()
    // Samples 905..5000 remain.
    expect(stats.samples).toBe(WINDOW)
    expect(stats.max).toBe(5000)
    expect(stats.p50).toBe(905 + WINDOW / 2)
  })

  it('forgets an old maximum once the window has moved past it', () => {
    const s = sampler([1_000_000])
    for (let i = 0; i < WINDOW - 1; i++) s.add(1)
    expect(s.percentiles().max).toBe(1_000_000)
    s.add(1)
    expect(s.percentiles()).toEqual({ samples: WINDOW, p50: 1, p90: 1, p99: 1, max: 1 })
  })

  it('agrees with sorting the last samples', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1 }),
          // Long runs past the window, generated cheaply from a seed.
          fc
            .tuple(fc.integer({ min: 1, max: 3 * WINDOW }), fc.nat())
            .map(([n, seed]) =>
              Array.from({ length: n }, (_, i) => ((seed + i * 7919) % 5003) / 4),
            ),
        ),
        (values) => {
          const stats = sampler(values).percentiles()
          const kept = values.slice(-WINDOW).sort((a, b) => a - b)
          const n = kept.length
          const at = (q: number) => kept[Math.min(n - 1, Math.floor(q * n))]
          expect(stats).toEqual({
            samples: n,
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: kept[n - 1],
          })
          expect(stats.p50 <= stats.p90 && stats.p90 <= stats.p99 && stats.p99 <= stats.max).toBe(
            true,
          )
        },
      ),
      { numRuns: 100 },
    )
  })
})
