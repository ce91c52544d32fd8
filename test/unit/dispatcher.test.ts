import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { stringCodec } from '../../src/codec/builtin.js'
import { Dispatcher, hashKey, jumpHash, laneOfKey, Transition } from '../../src/queue/dispatcher.js'
import { Lane } from '../../src/queue/lane.js'
import { SLOT } from '../../src/ring/layout.js'

const PICK_EVERY = 32

interface FakeLane {
  id: number
  writer: { backlog: number }
}

/** The dispatcher reads nothing of a lane but `writer.backlog`. */
function lanes(...backlogs: number[]): FakeLane[] {
  return backlogs.map((backlog, id) => ({ id, writer: { backlog } }))
}

function dispatcher(fake: FakeLane[], byKey: boolean): Dispatcher {
  return new Dispatcher(fake as never, byKey)
}

function idOf(lane: unknown): number {
  return (lane as FakeLane).id
}

describe('hashKey', () => {
  // Pinned: keys must map to the same lanes across releases, processes and machines.
  it.each([
    ['', 0x811c9dc5],
    ['a', 0xe40c292c],
    ['foobar', 0xbf9cf968],
    ['order-42', 0x572446f4],
    ['user:1001', 0x4f7c1bf6],
    ['clé', 0x8d8f7409],
    ['🚚', 0x55329df6],
  ])('hashes %j to a fixed value', (key, expected) => {
    expect(hashKey(key)).toBe(expected)
  })

  it('hashes a number like its String()', () => {
    expect(hashKey(42)).toBe(0x87e38583)
    expect(hashKey(-1.5)).toBe(0x1be98f5e)
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (n) => {
        expect(hashKey(n)).toBe(hashKey(String(n)))
      }),
    )
    expect(hashKey(-0)).toBe(hashKey(0))
  })

  it('is a u32', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (key) => {
        const h = hashKey(key)
        return Number.isInteger(h) && h >= 0 && h < 2 ** 32 && hashKey(key) === h
      }),
    )
  })

  const families: [string, (i: number) => string | number][] = [
    ['order-<i>', (i) => `order-${i}`],
    ['integers', (i) => i],
    ['user:<i*7919>', (i) => `user:${i * 7919}`],
  ]
  it.each(families)('spreads 10k %s keys evenly over 2..16 lanes', (_, key) => {
    const keys = 10_000
    for (let n = 2; n <= 16; n++) {
      const counts = new Array<number>(n).fill(0)
      for (let i = 0; i < keys; i++) counts[hashKey(key(i)) % n]++
      const expected = keys / n
      const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
      const df = n - 1
      // Far looser than a 99.9% bound: catches a broken hash, not an unlucky one.
      expect(chi2, `chi² over ${n} lanes`).toBeLessThan(df + 6 * Math.sqrt(2 * df) + 10)
      for (const c of counts) expect(Math.abs(c - expected) / expected).toBeLessThan(0.2)
    }
  })
})

describe('Dispatcher by key', () => {
  it('always picks laneOfKey(key, lanes) for a key', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.array(fc.oneof(fc.string(), fc.integer()), { minLength: 1, maxLength: 100 }),
        (n, keys) => {
          const fake = lanes(...new Array<number>(n).fill(0))
          const d = dispatcher(fake, true)
          for (const key of keys) {
            // Backlogs must not move a keyed message.
            fake[(laneOfKey(key, n) + 1) % n].writer.backlog += 1000
            expect(idOf(d.pick(key))).toBe(laneOfKey(key, n))
          }
        },
      ),
      { numRuns: 100 },
    )
  })

  it('gives one key one lane across dispatchers over the same lanes', () => {
    const fake = lanes(0, 0, 0, 0, 0)
    const a = dispatcher(fake, true)
    const b = dispatcher(fake, true)
    for (const key of ['x', 'y', 7, 'order-42']) expect(a.pick(key)).toBe(b.pick(key))
  })

  it('falls back to the emptiest lane for a message without a key', () => {
    const d = dispatcher(lanes(5, 1, 9), true)
    expect(idOf(d.pick(undefined))).toBe(1)
  })
})

describe('Dispatcher without key', () => {
  it('picks the lane with the smallest backlog, the first one on ties', () => {
    expect(idOf(dispatcher(lanes(5, 2, 9), false).pick(undefined))).toBe(1)
    expect(idOf(dispatcher(lanes(3, 0, 0, 4), false).pick(undefined))).toBe(1)
    expect(idOf(dispatcher(lanes(0, 0), false).pick(undefined))).toBe(0)
  })

  it('ignores keys', () => {
    const d = dispatcher(lanes(5, 2, 9), false)
    expect(idOf(d.pick('some-key'))).toBe(1)
  })

  it(`keeps its lane for ${PICK_EVERY} picks, then re-picks`, () => {
    const fake = lanes(5, 2, 9)
    const d = dispatcher(fake, false)
    expect(idOf(d.pick(undefined))).toBe(1)
    // Now lane 2 is the emptiest, but the dispatcher does not look until its countdown ends.
    fake[2].writer.backlog = 0
    for (let i = 2; i <= PICK_EVERY; i++) expect(idOf(d.pick(undefined)), `pick ${i}`).toBe(1)
    expect(idOf(d.pick(undefined))).toBe(2)
    fake[0].writer.backlog = -1
    for (let i = 2; i <= PICK_EVERY; i++) expect(idOf(d.pick(undefined)), `pick ${i}`).toBe(2)
    expect(idOf(d.pick(undefined))).toBe(0)
  })

  it('re-picks every PICK_EVERY calls over a long run', () => {
    // Three lanes, so the lane emptiest at each re-pick (i % 3) differs from the last one.
    const fake = lanes(0, 0, 0)
    const d = dispatcher(fake, false)
    const picks: number[] = []
    for (let i = 0; i < PICK_EVERY * 10; i++) {
      // Make a different lane the emptiest before every call: only re-picks can follow it.
      for (const lane of fake) lane.writer.backlog = lane.id === i % 3 ? 0 : 100
      picks.push(idOf(d.pick(undefined)))
    }
    for (let i = 0; i < picks.length; i++) {
      const pickedAt = i - (i % PICK_EVERY)
      expect(picks[i], `pick ${i}`).toBe(pickedAt % 3)
    }
  })

  it('repick() picks the emptiest lane now and restarts the countdown', () => {
    const fake = lanes(4, 4, 4)
    const d = dispatcher(fake, false)
    expect(idOf(d.pick(undefined))).toBe(0)
    fake[2].writer.backlog = 1
    expect(idOf(d.repick())).toBe(2)
    expect(idOf(d.pick(undefined))).toBe(2)
    fake[1].writer.backlog = 0
    // repick() restarted the countdown and counts as one of PICK_EVERY: 31 picks stay on lane 2.
    for (let i = 2; i < PICK_EVERY; i++) expect(idOf(d.pick(undefined))).toBe(2)
    expect(idOf(d.pick(undefined))).toBe(1)
  })

  it('pickStretch() gives each message of a stretch the lane pick() would give it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 80 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.nat({ max: 9 }), { minLength: 3, maxLength: 3 }),
        (stretches, seeds) => {
          const a = lanes(0, 0, 0)
          const b = lanes(0, 0, 0)
          const one = dispatcher(a, false)
          const many = dispatcher(b, false)
          let message = 0
          /** Backlogs that change with every message, the same for both dispatchers. */
          const shape = (fake: FakeLane[]) => {
            for (const lane of fake) lane.writer.backlog = (seeds[lane.id] * (message + 1)) % 7
          }
          for (let want of stretches) {
            while (want > 0) {
              shape(b)
              const lane = idOf(many.pickStretch(want))
              const taken = many.stretch
              expect(taken).toBeGreaterThan(0)
              expect(taken).toBeLessThanOrEqual(Math.min(want, PICK_EVERY))
              for (let i = 0; i < taken; i++, message++) {
                shape(a)
                // A re-pick falls on a stretch's first message only: both saw the same backlogs.
                expect(idOf(one.pick(undefined)), `message ${message}`).toBe(lane)
              }
              want -= taken
            }
          }
        },
      ),
      { numRuns: 200 },
    )
  })

  it('works with a single lane', () => {
    const fake = lanes(100)
    const d = dispatcher(fake, false)
    for (let i = 0; i < 100; i++) expect(idOf(d.pick(undefined))).toBe(0)
    expect(idOf(d.repick())).toBe(0)
  })
})

describe('jumpHash (consistent)', () => {
  it('growing from n to m lanes moves a key only into a new lane; shrinking only out of a removed one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 64 }),
        (hash, n, m) => {
          const [small, large] = n < m ? [n, m] : [m, n]
          const a = jumpHash(hash, small)
          const b = jumpHash(hash, large)
          expect(a).toBeGreaterThanOrEqual(0)
          expect(a).toBeLessThan(small)
          expect(b).toBeLessThan(large)
          // The key stays, or it is in one of the lanes only the larger count has.
          if (a !== b) expect(b).toBeGreaterThanOrEqual(small)
        },
      ),
      { numRuns: 2000 },
    )
  })

  it('moves about 1/m of the keys from n = m-1 to m lanes, and spreads them evenly', () => {
    const keys = 20_000
    for (const m of [2, 3, 4, 8, 16]) {
      let moved = 0
      const counts = new Array<number>(m).fill(0)
      for (let i = 0; i < keys; i++) {
        const h = hashKey(`order-${i}`)
        counts[jumpHash(h, m)]++
        if (jumpHash(h, m - 1) !== jumpHash(h, m)) moved++
      }
      expect(Math.abs(moved / keys - 1 / m)).toBeLessThan(0.02)
      for (const c of counts) expect(Math.abs(c - keys / m) / (keys / m)).toBeLessThan(0.1)
    }
  })
})

describe('a transition after a resize', () => {
  /** A lane whose writer has written up to `cursor` and whose main side settled up to `settled`. */
  function lane(cursor: number, settled: number) {
    return {
      writer: { cursor, backlog: 0 },
      settled,
      settledThrough(c: number) {
        return ((this.settled - c) | 0) >= 0
      },
    }
  }

  it('holds a key that changed lane until its old lane settled up to its fence; others never wait', () => {
    const a = lane(800, 100)
    const b = lane(0, 0)
    const transition = new Transition([a] as never)
    const d = new Dispatcher([a, b] as never, true, transition)
    const moved = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'].filter(
      (k) => laneOfKey(k, 2) === 1,
    )
    const stayed = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7'].filter(
      (k) => laneOfKey(k, 2) === 0,
    )
    expect(moved.length).toBeGreaterThan(0)
    expect(stayed.length).toBeGreaterThan(0)
    for (const k of stayed) expect(d.pick(k)).toBe(a)
    for (const k of moved) expect(d.pick(k)).toBeUndefined()
    expect(transition.done).toBe(false)
    // Lane a writes on past the fence (keys that stayed), and settles up to the fence.
    a.writer.cursor = 1600
    a.settled = 800
    for (const k of moved) expect(d.pick(k)).toBe(b)
    expect(transition.done).toBe(true)
  })

  it('a real lane: RELEASE past its fence is not enough, its acks must have run', () => {
    const acks: string[] = []
    const outcomes = {
      fence: { call0: (f: () => void) => f(), call1() {}, call2() {}, call3() {} },
      completed() {},
      failed() {},
      deadLettered() {},
      rejected() {},
      aborted() {},
      sampled() {},
      sampleDropped() {},
    }
    const lane = new Lane(0, 4096, stringCodec, outcomes)
    lane.write('a', 0, () => acks.push('a'))
    lane.write('b', 0, () => acks.push('b'))
    lane.publish()
    const transition = new Transition([lane])
    expect(transition.passed(lane)).toBe(false)
    // The worker finished both and released them; the main thread has not applied it yet.
    Atomics.store(new Int32Array(lane.requests), SLOT.RELEASE, lane.writer.cursor | 0)
    expect(transition.passed(lane)).toBe(false)
    lane.drain()
    expect(acks).toEqual(['a', 'b'])
    expect(transition.passed(lane)).toBe(true)
    expect(transition.done).toBe(true)
  })
})
