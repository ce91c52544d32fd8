import { describe, expect, it } from 'vitest'
import { STAT_SLOTS, Stat } from '../../src/lane/protocol.js'
import { DrainBudget } from '../../src/queue/drain-budget.js'
import type { Lane } from '../../src/queue/lane.js'

/** The part of a lane the budget reads and writes. */
function fakeLane(outstanding = 0) {
  return {
    statSlots: new Float64Array(STAT_SLOTS),
    outstanding,
    maxOutstanding: Number.POSITIVE_INFINITY,
  }
}
type Fake = ReturnType<typeof fakeLane>
const asLanes = (lanes: Fake[]) => lanes as unknown as Lane[]

/** The worker finished `n` records in `busyMs` more busy time. */
function work(lane: Fake, n: number, busyMs: number) {
  lane.statSlots[Stat.HANDLED] += n
  lane.statSlots[Stat.BUSY_MS] += busyMs
}

describe('DrainBudget', () => {
  it('limits a new lane to one message until a rate is measured', () => {
    const budget = new DrainBudget(1000)
    const lane = fakeLane()
    budget.added(lane as unknown as Lane, [])
    expect(lane.maxOutstanding).toBe(1)
    budget.update(asLanes([lane]))
    expect(lane.maxOutstanding).toBe(1)
  })

  it('lets a lane hold what it finishes within the budget at its measured rate', () => {
    const budget = new DrainBudget(1000)
    const lane = fakeLane()
    budget.added(lane as unknown as Lane, [])
    work(lane, 100, 50) // 2 per ms
    budget.update(asLanes([lane]))
    expect(lane.maxOutstanding).toBe(2000)
    // A slower handler: the moving average follows, halfway per measure.
    work(lane, 50, 100) // 0.5 per ms
    budget.update(asLanes([lane]))
    expect(lane.maxOutstanding).toBe(1250)
  })

  it('skips a measure over too little busy time, and counts failed attempts as work', () => {
    const budget = new DrainBudget(100)
    const lane = fakeLane()
    budget.added(lane as unknown as Lane, [])
    work(lane, 1, 1)
    budget.update(asLanes([lane]))
    expect(lane.maxOutstanding).toBe(1)
    lane.statSlots[Stat.FAILED] += 9
    lane.statSlots[Stat.BUSY_MS] += 9
    budget.update(asLanes([lane]))
    expect(lane.maxOutstanding).toBe(100)
  })

  it('gives a lane added later the mean rate of the measured ones', () => {
    const budget = new DrainBudget(10)
    const a = fakeLane()
    const b = fakeLane()
    budget.added(a as unknown as Lane, [])
    budget.added(b as unknown as Lane, asLanes([a]))
    work(a, 40, 10) // 4 per ms
    work(b, 20, 10) // 2 per ms
    budget.update(asLanes([a, b]))
    const c = fakeLane()
    budget.added(c as unknown as Lane, asLanes([a, b]))
    expect(c.maxOutstanding).toBe(30)
  })

  it('estimates the drain time of the slowest lane; null before any measure', () => {
    const budget = new DrainBudget(undefined)
    const a = fakeLane(100)
    const b = fakeLane(10)
    budget.added(a as unknown as Lane, [])
    budget.added(b as unknown as Lane, asLanes([a]))
    expect(budget.estimateMs(asLanes([a, b]))).toBeNull()
    work(a, 100, 10) // 10 per ms: 100 in 10 ms
    work(b, 10, 10) // 1 per ms: 10 in 10 ms
    budget.measureAll(asLanes([a, b]))
    expect(budget.estimateMs(asLanes([a, b]))).toBe(10)
    b.outstanding = 50
    expect(budget.estimateMs(asLanes([a, b]))).toBe(50)
    // Without a budget, lanes are never limited.
    expect(a.maxOutstanding).toBe(Number.POSITIVE_INFINITY)
  })
})
