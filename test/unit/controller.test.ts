import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Decision, ThreadController } from '../../src/tune/controller.js'
import type { TuneWindow } from '../../src/tune/signals.js'

/** The controller's rules one by one, on hand-made windows (the plant is in the .sim test). */

interface Shape {
  /** msg/s */
  rate?: number
  busy?: number
  main?: number
  backlogStart?: number
  backlogEnd?: number
  completions?: number
}

/** One 250 ms window at `lanes`. Defaults: lanes saturated, backlog full and steady. */
function win(lanes: number, shape: Shape = {}): TuneWindow {
  const rate = shape.rate ?? 10_000 * lanes
  return {
    lanes,
    elapsedMs: 250,
    completions: shape.completions ?? Math.round(rate / 4),
    busy: Array.from({ length: lanes }, () => shape.busy ?? 0.98),
    backlogStart: shape.backlogStart ?? 1000,
    backlogEnd: shape.backlogEnd ?? 1000,
    mainUtilisation: shape.main ?? 0.3,
  }
}

/** Feeds windows made by `shape(lanes, i)` at whatever count the controller asks for. */
function drive(
  c: ThreadController,
  count: number,
  shape: (lanes: number, i: number) => TuneWindow,
) {
  const decisions: Decision[] = []
  for (let i = 0; i < count; i++) decisions.push(c.observe(shape(c.lanes, i)))
  return decisions
}

describe('thread controller rules', () => {
  it('measures before it moves, then discards the first window after a change', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 2 })
    // The main thread 80 % busy: no room for a step larger than one lane.
    const first = drive(c, 3, (n) => win(n, { main: 0.8 }))
    expect(first.map((d) => d.change)).toEqual([0, 0, 1])
    expect(first[0].reason).toMatch(/measuring 2 lanes: 1 of 3/)
    // The transition window: whatever it says is not used.
    const cool = c.observe(win(3, { rate: 1 }))
    expect(cool.change).toBe(0)
    expect(cool.reason).toMatch(/cool-down: first window at 3 lanes/)
    // Had the 1 msg/s counted, the median of 3 at 3 lanes would still be fine; make sure it
    // was not even collected: three more windows decide.
    const next = drive(c, 3, (n) => win(n))
    expect(next[2].reason).toMatch(/^grew: \+50\.0% over 1 lane/)
  })

  it("steps by the producer's room when every lane is busy: up to doubling, not +1", () => {
    // Main thread 30 % busy: it could feed 0.9 / 0.3 = 3× the lanes; a step at most doubles.
    const roomy = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 4 })
    const [, , grow] = drive(roomy, 3, (n) => win(n, { main: 0.3 }))
    expect(grow.lanes).toBe(8)
    expect(grow.reason).toMatch(/lanes 98\.0% busy, main thread 30\.0%\): trying 8/)
    // 60 % busy: room for half as many again.
    const half = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 4 })
    expect(drive(half, 3, (n) => win(n, { main: 0.6 }))[2].lanes).toBe(6)
    // Lanes with slack: no such shortcut, +1.
    const slack = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 4 })
    const rising = (n: number) => win(n, { main: 0.3, busy: 0.7, backlogEnd: 2000 })
    expect(drive(slack, 3, rising)[2].lanes).toBe(5)
  })

  it('discards the warm-up windows at the start (by default 2)', () => {
    const c = new ThreadController({ min: 1, max: 8, initial: 2 })
    // Slow windows while workers start: not a base to judge anything against.
    const warm = drive(c, 2, (n) => win(n, { rate: 100, main: 0.8 }))
    for (const d of warm) expect(d.reason).toMatch(/^warm-up at 2 lanes, discarded/)
    const first = drive(c, 3, (n) => win(n, { main: 0.8 }))
    expect(first[0].reason).toMatch(/measuring 2 lanes: 1 of 3/)
    expect(first[2].change).toBe(1)
  })

  it('discards windows with too few completions to judge', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 2, minCompletions: 100 })
    for (let i = 0; i < 10; i++) {
      const d = c.observe(win(2, { completions: 99 }))
      expect(d.change).toBe(0)
      expect(d.reason).toBe('discarded: 99 completions < 100, too few to judge')
    }
    expect(c.view().phase).toBe('measure')
  })

  it('a growth that does not pay is undone, with its numbers, and not retried at once', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 4 })
    // Flat: 40 k msg/s whatever the count, lanes saturated (a hidden limit).
    const decisions = drive(c, 30, (n) => win(n, { rate: 40_000 }))
    const undo = decisions.find((d) => d.change < 0 && d.previous === 5)!
    expect(undo.reason).toMatch(
      /^no gain: \+0\.0% over 1 lane \(40\.0k msg\/s → 40\.0k msg\/s\) < \+\d+\.\d%: back to 4$/,
    )
    const later = decisions.slice(decisions.indexOf(undo) + 1)
    expect(later.filter((d) => d.lanes === 5)).toEqual([])
  })

  it('keeps the smaller of two counts within the tolerance', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 8 })
    // Saturated lanes, 40 k msg/s from 4 lanes up, linear below.
    const decisions = drive(c, 80, (n) => win(n, { rate: Math.min(4, n) * 10_000 }))
    const tail = decisions.slice(-20).map((d) => d.lanes)
    expect(Math.min(...tail)).toBeGreaterThanOrEqual(3)
    expect(Math.max(...tail)).toBeLessThanOrEqual(5)
    expect(decisions.filter((d) => /^shrank/.test(d.reason)).length).toBeGreaterThan(0)
  })

  it('never grows while producer-bound: sheds the idle lanes instead', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 8 })
    // The producer pushes 30 k msg/s at most: 3 lanes' worth of handler time, main at 99 %.
    const decisions = drive(c, 40, (n) =>
      win(n, {
        rate: Math.min(30_000, 10_000 * n),
        busy: Math.min(1, 3 / n),
        main: n >= 3 ? 0.99 : 0.66,
        backlogStart: 5,
        backlogEnd: n >= 3 ? 5 : 5000,
      }),
    )
    expect(decisions.every((d) => d.lanes <= 8)).toBe(true)
    const shed = decisions.find((d) => d.change < 0)!
    expect(shed.reason).toMatch(
      /producer-bound \(main thread saturated\), lanes 37\.5% busy \(Σ 3\.0 of 8\): shedding to 4/,
    )
    // 3 lanes carry the 30 k; 2 would not.
    expect(c.lanes).toBe(3)
  })

  it('never grows while input-starved', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 2 })
    // The source offers 6 k msg/s; lanes 30 % busy, backlog flat, main idle.
    const decisions = drive(c, 60, (n) =>
      win(n, { rate: 6_000, busy: 0.6 / n, main: 0.1, backlogStart: 0, backlogEnd: 0 }),
    )
    expect(decisions.every((d) => d.change <= 0)).toBe(true)
    expect(decisions.some((d) => /input-starved/.test(d.reason))).toBe(true)
  })

  it('grows while the backlog rises even if lanes are not fully busy', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 2 })
    const d = drive(c, 3, (n) => win(n, { busy: 0.6, backlogStart: 0, backlogEnd: 5000 }))
    expect(d[2].change).toBe(1)
  })

  it('never grows at the ceiling, never shrinks below the floor', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(
          fc.record({
            scale: fc.double({ min: 0.2, max: 3, noNaN: true }),
            busy: fc.double({ min: 0, max: 1, noNaN: true }),
            main: fc.double({ min: 0, max: 1, noNaN: true }),
            rising: fc.boolean(),
            few: fc.boolean(),
            other: fc.boolean(),
          }),
          { minLength: 1, maxLength: 120 },
        ),
        (min, span, maxStep, windows) => {
          const max = min + span
          const c = new ThreadController({ warmup: 0, min, max, initial: max, maxStep })
          for (const w of windows) {
            // Now and then the queue ran another count than asked (a failed resize).
            const lanes = w.other ? Math.max(1, c.lanes - 1) : c.lanes
            const before = c.lanes
            const d = c.observe(
              win(lanes, {
                rate: 10_000 * Math.sqrt(lanes) * w.scale,
                busy: w.busy,
                main: w.main,
                backlogEnd: w.rising ? 5000 : 1000,
                completions: w.few ? 10 : undefined,
              }),
            )
            expect(d.lanes).toBeGreaterThanOrEqual(min)
            expect(d.lanes).toBeLessThanOrEqual(max)
            expect(d.lanes).toBe(c.lanes)
            if (lanes === before) expect(Math.abs(d.change)).toBeLessThanOrEqual(maxStep)
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it('follows the queue when it ran another count than asked', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 4 })
    const d = c.observe(win(6))
    expect(d).toMatchObject({ lanes: 6, change: 0 })
    expect(d.reason).toBe('the queue ran 6 lanes, not 4: measuring 6')
    expect(c.view().phase).toBe('measure')
    const out = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 4 }).observe(win(12))
    expect(out).toMatchObject({ lanes: 8, previous: 12, change: -4 })
  })

  it('clamps the initial count into [min, max], and says so', () => {
    const c = new ThreadController({ warmup: 0, min: 2, max: 4, initial: 9 })
    expect(c.lanes).toBe(4)
    expect(c.observe(win(9)).reason).toBe('9 lanes is outside [2, 4]')
  })

  it('re-explores after a persistent shift, not after a burst', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 4, initial: 4 })
    // Lanes scale linearly to the ceiling: it holds 4.
    drive(c, 40, (n) => win(n))
    expect(c.lanes).toBe(4)
    // One window at a third: a burst.
    expect(c.observe(win(4, { rate: 13_000 })).reason).not.toMatch(/shift/)
    drive(c, 3, (n) => win(n))
    // Every window at a third from now on: a shift.
    const after = drive(c, 4, (n) => win(n, { rate: 4_000 * n }))
    expect(
      after.some((d) =>
        /^shift: 4 lanes moved -60\.0% \(40\.0k msg\/s → 16\.0k msg\/s\)/.test(d.reason),
      ),
    ).toBe(true)
  })

  it('every change carries its numbers', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 16, initial: 1 })
    const decisions = drive(c, 100, (n, i) =>
      win(n, { rate: Math.min(n, 6) * 10_000 * (1 + 0.03 * Math.sin(i)) }),
    )
    for (const d of decisions.filter((x) => x.change !== 0)) {
      expect(d.reason).toMatch(/\d+(\.\d+)?(%|k? ?msg\/s)/)
    }
  })

  it('keeps a bounded log, oldest first', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 8, initial: 2, logSize: 5 })
    const decisions = drive(c, 20, (n) => win(n))
    const log = c.log()
    expect(log).toHaveLength(5)
    expect(log).toEqual(decisions.slice(-5))
    expect(log.map((d) => d.window)).toEqual([15, 16, 17, 18, 19])
    expect(c.view().last).toEqual(decisions[19])
  })

  it('refuses windows it cannot read, and bad bounds', () => {
    const c = new ThreadController({ warmup: 0, min: 1, max: 4, initial: 2 })
    expect(() => c.observe({ ...win(2), elapsedMs: 0 })).toThrow(RangeError)
    expect(() => c.observe({ ...win(2), busy: [1] })).toThrow(/one entry per lane/)
    expect(() => new ThreadController({ warmup: 0, min: 3, max: 2, initial: 2 })).toThrow(
      RangeError,
    )
    expect(() => new ThreadController({ warmup: 0, min: 0, max: 2, initial: 2 })).toThrow(
      RangeError,
    )
  })
})
