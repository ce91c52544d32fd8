import { describe, expect, it } from 'vitest'
import {
  formatBytes,
  type MeasuredConfig,
  ordinal,
  percent,
  recommend,
  WITHIN_BEST,
} from '../../src/tune/recommend.js'

const KiB64 = 1 << 16
const MiB = 1 << 20

/** One lane size; throughputs by thread count 1..n, main-thread utilisation 0.5 unless given. */
function curve(throughputs: number[], elu: number[] = [], laneBytes = MiB): MeasuredConfig[] {
  return throughputs.map((throughput, i) => ({
    threads: i + 1,
    laneBytes,
    throughput,
    mainThreadUtilisation: elu[i] ?? 0.5,
  }))
}

describe('recommend', () => {
  it('on a plateau: the first count within 3 % of the best, and what the next one adds', () => {
    const r = recommend(curve([100, 195, 200, 201]))!
    expect(r.threads).toBe(2)
    expect(r.best.threads).toBe(4)
    expect(r.ofBest).toBeCloseTo(195 / 201, 6)
    expect(r.next).toEqual({ threads: 3, adds: 200 / 195 - 1 })
    expect(r.producerSaturated).toBeNull()
    expect(r.reason).toMatch(/^2 threads: 97 % of the best \(201 msg\/s at 4 threads\)/)
    expect(r.reason).toContain('a 3rd thread adds 2.6 %')
    expect(r.reason).toContain('the producer is not saturated (main thread at most 50 % busy)')
  })

  it('when throughput keeps rising: the largest count, and says more might help', () => {
    const r = recommend(curve([100, 200, 300, 400]))!
    expect(r.threads).toBe(4)
    expect(r.ofBest).toBe(1)
    expect(r.next).toBeNull()
    expect(r.reason).toMatch(/^4 threads: the best measured \(400 msg\/s\)/)
    expect(r.reason).toContain('largest count swept')
  })

  it('when the largest count is every CPU the process may use: says so instead', () => {
    const r = recommend(curve([100, 200]), 2)!
    expect(r.threads).toBe(2)
    expect(r.reason).toContain('this process may use 2 CPUs')
    expect(r.reason).not.toContain('largest count swept')
  })

  it('on noisy measurements: the best need not be the recommendation, only near it', () => {
    // 3 threads measured best by noise; 2 is within the threshold, 4 dips.
    const r = recommend(curve([100, 190, 195, 186, 194]))!
    expect(r.best.threads).toBe(3)
    expect(r.threads).toBe(2)
    expect(r.throughput).toBeGreaterThanOrEqual(r.best.throughput * WITHIN_BEST)
    expect(r.next?.threads).toBe(3)
  })

  it('just outside the threshold: the next count is taken', () => {
    const r = recommend(curve([100, 96.9, 100]))!
    // 96.9 < 97 % of 100: 2 threads do not qualify, 1 thread does (it equals the best).
    expect(r.threads).toBe(1)
    const r2 = recommend(curve([90, 96.9, 100]))!
    expect(r2.threads).toBe(3)
  })

  it('a saturated producer: names the count where the main thread is saturated', () => {
    const r = recommend(curve([100, 150, 148, 140], [0.6, 0.93, 0.97, 0.98]))!
    expect(r.threads).toBe(2)
    expect(r.producerSaturated).toEqual({ threads: 2, utilisation: 0.93 })
    expect(r.next).toEqual({ threads: 3, adds: 148 / 150 - 1 })
    expect(r.reason).toContain('a 3rd thread loses 1.3 %')
    expect(r.reason).toContain('the producer is saturated at 2 (main thread 93 % busy)')
  })

  it('a list with gaps: speaks of the next swept count, not the next integer', () => {
    const r = recommend([
      { threads: 1, laneBytes: MiB, throughput: 100, mainThreadUtilisation: 0.2 },
      { threads: 2, laneBytes: MiB, throughput: 200, mainThreadUtilisation: 0.3 },
      { threads: 4, laneBytes: MiB, throughput: 202, mainThreadUtilisation: 0.4 },
    ])!
    expect(r.threads).toBe(2)
    expect(r.reason).toContain('4 threads add 1.0 %')
  })

  it('lane sizes: the smaller lane when it is as good, and the other compared', () => {
    const r = recommend([...curve([100, 190], [], KiB64), ...curve([101, 195], [], MiB)])!
    expect(r).toMatchObject({ threads: 2, laneBytes: KiB64 })
    expect(r.reason).toMatch(
      /^2 threads, 64 KiB lanes: 97 % of the best \(195 msg\/s at 2 threads, 1 MiB lanes\)/,
    )
    expect(r.reason).toContain('at 2 threads, 1 MiB lanes give 103 %')
  })

  it('lane sizes: the larger lane when only it reaches the best', () => {
    const r = recommend([...curve([100, 150], [], KiB64), ...curve([101, 195], [], MiB)])!
    expect(r).toMatchObject({ threads: 2, laneBytes: MiB })
  })

  it('nothing finished anywhere: no recommendation', () => {
    expect(recommend(curve([0, 0]))).toBeNull()
  })

  it('rejects an empty or malformed list (a caller bug)', () => {
    expect(() => recommend([])).toThrow(/no configurations/)
    expect(() => recommend(curve([Number.NaN]))).toThrow(/malformed/)
  })
})

describe('formatting', () => {
  it.each([
    [1, '1st'],
    [2, '2nd'],
    [3, '3rd'],
    [4, '4th'],
    [11, '11th'],
    [12, '12th'],
    [13, '13th'],
    [21, '21st'],
    [22, '22nd'],
  ])('ordinal(%i) = %s', (n, s) => expect(ordinal(n)).toBe(s))

  it('percent and bytes', () => {
    expect(percent(0.973)).toBe('97 %')
    expect(percent(0.014)).toBe('1.4 %')
    expect(percent(0)).toBe('0 %')
    expect(formatBytes(65536)).toBe('64 KiB')
    expect(formatBytes(1 << 20)).toBe('1 MiB')
    expect(formatBytes(3000)).toBe('3000 B')
  })
})
