import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { customDelay, retryDelay } from '../../workers/backoff.js'

const policy = { attempts: 10, backoffMs: 50, maxBackoffMs: 1000, jitter: false }

describe('retry delays', () => {
  it('double per attempt from backoffMs, capped at maxBackoffMs', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7].map((a) => retryDelay(policy, a, Math.random))
    expect(delays).toEqual([50, 100, 200, 400, 800, 1000, 1000])
  })

  it('with jitter, stay within [½, 1] of the capped delay', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const base = retryDelay(policy, attempt, () => r)
          const jittered = retryDelay({ ...policy, jitter: true }, attempt, () => r)
          expect(jittered).toBeGreaterThanOrEqual(base / 2)
          expect(jittered).toBeLessThanOrEqual(base)
        },
      ),
    )
  })

  it("a handler's backoff() must return a finite number ≥ 0", () => {
    expect(customDelay(0)).toBe(0)
    expect(customDelay(12.5)).toBe(12.5)
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5', undefined, null]) {
      expect(() => customDelay(bad)).toThrow(/backoff\(\) must return/)
    }
  })
})
