import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AckFifo } from '../../src/queue/ack-fifo.js'
import type { Pending, RunPending } from '../../src/queue/pending.js'
import { createRingBuffer, RingReader, RingWriter } from '../../src/ring/index.js'

const U32 = 2 ** 32

function run(): RunPending {
  return { kind: 'run', resolve: () => {}, reject: () => {} }
}

/** A cheap assertion: the model loops run it hundreds of thousands of times. */
function eq(actual: unknown, expected: unknown, what: string) {
  if (actual !== expected)
    throw new Error(`${what}: got ${String(actual)}, expected ${String(expected)}`)
}

/** Shifts every entry whose record ends at or before `cursor`, as the lane settles them. */
function settleUpTo(fifo: AckFifo, cursor: number): (Pending | undefined)[] {
  const out: (Pending | undefined)[] = []
  while (fifo.headEndsBy(cursor)) out.push(fifo.shift())
  return out
}

describe('AckFifo basics', () => {
  it('starts empty and not full', () => {
    const fifo = new AckFifo(4)
    expect(fifo.size).toBe(0)
    expect(fifo.full).toBe(false)
    expect(fifo.awaitingResults).toBe(0)
    expect(fifo.headEndsBy(0)).toBe(false)
  })

  it('shifts in push order, with the pushed pending', () => {
    const fifo = new AckFifo(4)
    const ack = () => {}
    const push: Pending = { kind: 'push', ack, nack: () => {} }
    const r = run()
    fifo.push(8, ack)
    fifo.push(16, push)
    fifo.push(24, r)
    fifo.push(32, undefined)
    expect(fifo.size).toBe(4)
    expect(fifo.shift()).toBe(ack)
    expect(fifo.shift()).toBe(push)
    expect(fifo.shift()).toBe(r)
    expect(fifo.shift()).toBeUndefined()
    expect(fifo.size).toBe(0)
  })

  it('is full exactly at capacity', () => {
    const fifo = new AckFifo(3)
    for (let i = 1; i <= 3; i++) {
      expect(fifo.full).toBe(false)
      fifo.push(8 * i, undefined)
    }
    expect(fifo.full).toBe(true)
    fifo.shift()
    expect(fifo.full).toBe(false)
  })

  it('throws on push when full, leaving every entry in place', () => {
    const fifo = new AckFifo(2)
    const a = () => {}
    const b = () => {}
    fifo.push(8, a)
    fifo.push(16, b)
    expect(() => fifo.push(24, () => {})).toThrow(/overflow/)
    expect(fifo.size).toBe(2)
    expect(fifo.shift()).toBe(a)
    expect(fifo.shift()).toBe(b)
  })

  it('throws on shift when empty', () => {
    const fifo = new AckFifo(2)
    expect(() => fifo.shift()).toThrow(/underflow/)
    fifo.push(8, undefined)
    fifo.shift()
    expect(() => fifo.shift()).toThrow(/underflow/)
    expect(fifo.size).toBe(0)
  })

  it('counts only run pendings as awaiting results', () => {
    const fifo = new AckFifo(8)
    fifo.push(8, run())
    fifo.push(16, () => {})
    fifo.push(24, { kind: 'push', nack: () => {} })
    fifo.push(32, run())
    fifo.push(40, undefined)
    expect(fifo.awaitingResults).toBe(2)
    fifo.shift()
    expect(fifo.awaitingResults).toBe(1)
    fifo.shift()
    fifo.shift()
    expect(fifo.awaitingResults).toBe(1)
    fifo.shift()
    expect(fifo.awaitingResults).toBe(0)
  })

  it('wraps its index over many push/shift cycles without losing order', () => {
    const fifo = new AckFifo(5)
    let next = 0
    let expected = 0
    // Uneven bursts so the head visits every slot with different fill levels.
    for (let round = 0; round < 1000; round++) {
      const burst = 1 + (round % 5)
      for (let i = 0; i < burst && !fifo.full; i++) {
        const id = next++
        fifo.push(8 * id, (() => id) as Pending)
      }
      const take = 1 + ((round * 7) % fifo.size)
      for (let i = 0; i < take; i++) {
        expect((fifo.shift() as () => number)()).toBe(expected++)
      }
    }
    while (fifo.size > 0) expect((fifo.shift() as () => number)()).toBe(expected++)
    expect(expected).toBe(next)
  })
})

describe('AckFifo.takeEnded', () => {
  it('takes the ended entries of one group at a time, gone before they are settled', () => {
    const fifo = new AckFifo(8)
    const batch = makePending('many')
    const ack = makePending('ack')
    for (let i = 0; i < 3; i++) fifo.push(8 * (i + 1), batch, i)
    fifo.push(32, ack)
    fifo.push(40, batch, 7)
    expect(fifo.takeEnded(20)).toBe(2)
    expect([fifo.takenPending, fifo.takenIndex, fifo.size]).toEqual([batch, 0, 3])
    // A push between two takes (an ack that pushes) lands after every entry.
    fifo.push(48, batch, 8)
    expect(fifo.takeEnded(48)).toBe(1)
    expect([fifo.takenPending, fifo.takenIndex]).toEqual([batch, 2])
    expect(fifo.takeEnded(48)).toBe(1)
    expect(fifo.takenPending).toBe(ack)
    // Index 8 follows 7: one group.
    expect(fifo.takeEnded(48)).toBe(2)
    expect([fifo.takenPending, fifo.takenIndex, fifo.size]).toEqual([batch, 7, 0])
    expect(fifo.takeEnded(1024)).toBe(0)
  })
})

describe('AckFifo.headEndsBy (modular cursors)', () => {
  it('compares ends and cursors across 2^32', () => {
    const fifo = new AckFifo(4)
    const end = 8 // just past 2^32, as a u32
    fifo.push(end, undefined)
    expect(fifo.headEndsBy(U32 - 8)).toBe(false)
    expect(fifo.headEndsBy(0)).toBe(false)
    expect(fifo.headEndsBy(8)).toBe(true)
    expect(fifo.headEndsBy(16)).toBe(true)
  })

  it('treats an end below 2^32 as before a cursor that crossed it', () => {
    const fifo = new AckFifo(4)
    fifo.push(U32 - 8, undefined)
    expect(fifo.headEndsBy(U32 - 16)).toBe(false)
    expect(fifo.headEndsBy(U32 - 8)).toBe(true)
    expect(fifo.headEndsBy(0)).toBe(true)
    expect(fifo.headEndsBy(1024)).toBe(true)
  })

  it('accepts ends and cursors as u32 or int32 alike', () => {
    const fifo = new AckFifo(4)
    const end = U32 - 64
    fifo.push(end | 0, undefined)
    expect(fifo.headEndsBy(end)).toBe(true)
    expect(fifo.headEndsBy(end | 0)).toBe(true)
    expect(fifo.headEndsBy((end - 8) | 0)).toBe(false)
    expect(fifo.headEndsBy((end + 64) >>> 0)).toBe(true)
  })

  it('looks only at the oldest entry', () => {
    const fifo = new AckFifo(4)
    fifo.push(U32 - 8, undefined)
    fifo.push(16, undefined)
    expect(settleUpTo(fifo, 8)).toHaveLength(1)
    expect(fifo.headEndsBy(8)).toBe(false)
    expect(settleUpTo(fifo, 16)).toHaveLength(1)
    expect(fifo.size).toBe(0)
  })
})

type Op =
  | {
      kind: 'push'
      step: number
      pending: 'none' | 'ack' | 'push' | 'run' | 'many'
      /** Entries in one run (pushEnd() each, then one endRun()), as a pushMany() stretch. */
      run: number
      again: boolean
      /** The run's first index skips ahead: a batch's messages went to another lane between. */
      gap: boolean
    }
  | { kind: 'settle'; pick: number; asInt32: boolean; inOneCall: boolean }
  | { kind: 'shift' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('push' as const),
      step: fc.integer({ min: 1, max: 64 }),
      pending: fc.constantFrom(
        'none' as const,
        'ack' as const,
        'push' as const,
        'run' as const,
        'many' as const,
      ),
      // 0: push() of one entry; more: a run (never for a run()).
      run: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 5 })),
      // The previous push's pending again (a batch's callbacks, a loop's ack): entries that
      // share it form one group in the FIFO.
      again: fc.boolean(),
      gap: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      pick: fc.nat(),
      asInt32: fc.boolean(),
      // takeEnded(), as the lane settles, rather than headEndsBy() + shift() per entry.
      inOneCall: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'shift' as const }) },
)

interface Entry {
  /** Absolute byte position (may pass 2^32); the FIFO sees it modulo 2^32. */
  end: number
  pending: Pending | undefined
  /** Its place in its pushMany(): checked for a batch's callbacks only (others ignore it). */
  index: number
}

function makePending(kind: 'none' | 'ack' | 'push' | 'run' | 'many'): Pending | undefined {
  if (kind === 'none') return undefined
  if (kind === 'ack') return () => {}
  if (kind === 'push') return { kind: 'push', nack: () => {} }
  if (kind === 'many') {
    return { kind: 'many', ack: () => {}, nack: undefined, tracked: false, detach: undefined }
  }
  return run()
}

describe('AckFifo against an array model', () => {
  it('keeps size, order and entries through random push / settle / shift', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        // The arrays' first size: they grow (entries wrapped or not) on the way to capacity.
        fc.integer({ min: 1, max: 12 }),
        // Starts just below 2^32 so most runs cross it.
        fc.integer({ min: 1, max: 2048 }).map((k) => U32 - 8 * k),
        fc.array(opArb, { minLength: 1, maxLength: 200 }),
        (capacity, initialSlots, start, ops) => {
          const fifo = new AckFifo(capacity, initialSlots)
          const model: Entry[] = []
          const shifted: (Pending | undefined)[] = []
          const pushed: (Pending | undefined)[] = []
          let last = start
          let settled = start
          let nextIndex = 0
          for (const op of ops) {
            if (op.kind === 'push') {
              const previous = pushed[pushed.length - 1]
              const pending =
                op.again && pushed.length > 0 && !isRunPending(previous)
                  ? previous
                  : makePending(op.pending)
              const first = nextIndex + (op.gap ? 3 : 0)
              const n = isRunPending(pending) ? 0 : op.run
              if (n === 0 && model.length === capacity) {
                expect(() => fifo.push((last + 8 * op.step) % U32, pending)).toThrow(/overflow/)
              } else if (n === 0) {
                last += 8 * op.step
                fifo.push(last % U32, pending, first)
                model.push({ end: last, pending, index: first })
                pushed.push(pending)
                nextIndex = first + 1
              } else {
                // The lane checks room for the whole run first.
                const k = Math.min(n, capacity - model.length)
                for (let j = 0; j < k; j++) {
                  last += 8 * op.step
                  fifo.pushEnd(last % U32)
                  model.push({ end: last, pending, index: first + j })
                  pushed.push(pending)
                }
                fifo.endRun(k, pending, first)
                nextIndex = first + k
              }
            } else if (op.kind === 'settle') {
              // Any cursor from the last settled one up to the last end, between ends too.
              const cursor = settled + 8 * (op.pick % ((last - settled) / 8 + 1))
              const wire = op.asInt32 ? (cursor % U32) | 0 : cursor % U32
              const got: (Pending | undefined)[] = []
              const indices: number[] = []
              if (op.inOneCall) {
                let n: number
                while ((n = fifo.takeEnded(wire)) > 0) {
                  for (let j = 0; j < n; j++) {
                    got.push(fifo.takenPending)
                    indices.push(fifo.takenIndex + j)
                  }
                }
              } else {
                while (fifo.headEndsBy(wire)) {
                  indices.push(fifo.headIndex)
                  got.push(fifo.shift())
                }
              }
              const want: Entry[] = []
              while (model.length > 0 && model[0].end <= cursor) want.push(model.shift()!)
              eq(got.length, want.length, 'settled entries')
              for (let i = 0; i < got.length; i++) {
                eq(got[i], want[i].pending, `settled entry ${i}`)
                if (isBatchPending(want[i].pending)) {
                  eq(indices[i], want[i].index, `settled entry ${i}'s index`)
                }
              }
              shifted.push(...got)
              settled = cursor
            } else if (model.length === 0) {
              expect(() => fifo.shift()).toThrow(/underflow/)
            } else {
              const entry = model.shift()!
              if (isBatchPending(entry.pending)) eq(fifo.headIndex, entry.index, 'head index')
              eq(fifo.shift(), entry.pending, 'shifted entry')
              shifted.push(entry.pending)
              // A forced shift acts as if RELEASE reached its end.
              if (entry.end > settled) settled = entry.end
            }
            eq(fifo.size, model.length, 'size')
            eq(fifo.full, model.length === capacity, 'full')
            eq(fifo.awaitingResults, model.filter((e) => isRunPending(e.pending)).length, 'runs')
          }
          while (model.length > 0) {
            const entry = model.shift()!
            expect(fifo.shift()).toBe(entry.pending)
            shifted.push(entry.pending)
          }
          // Nothing lost, nothing duplicated, in push order.
          expect(shifted).toHaveLength(pushed.length)
          for (let i = 0; i < pushed.length; i++) expect(shifted[i]).toBe(pushed[i])
          expect(fifo.awaitingResults).toBe(0)
        },
      ),
      { numRuns: 300 },
    )
  })
})

function isRunPending(p: Pending | undefined): boolean {
  return typeof p === 'object' && p.kind === 'run'
}

function isBatchPending(p: Pending | undefined): boolean {
  return typeof p === 'object' && p.kind === 'many'
}

describe('capacity invariant: ringBytes/8 entries cover a ring of minimum-size records', () => {
  const starts = [0, 8, 24, U32 - 8, U32 - 40, U32 - 4096]

  for (const ringBytes of [64, 256, 4096]) {
    it.each(starts)(`ring of ${ringBytes} bytes from cursor %i`, (start) => {
      const writer = new RingWriter(createRingBuffer(ringBytes, start))
      const fifo = new AckFifo(ringBytes / 8)
      const empty = new Uint8Array(0)
      let records = 0
      while (writer.write(empty)) {
        // The lane checks `full` before every write; it must never be full while the ring has room.
        expect(fifo.full).toBe(false)
        fifo.push(writer.cursor, undefined)
        records++
        if (records > ringBytes) throw new Error('the writer never refused')
      }
      expect(records).toBe(fifo.capacity)
      expect(fifo.full).toBe(true)
      expect(writer.backlog).toBe(ringBytes)
    })
  }

  it('never overflows while records of any size are written and released', () => {
    const capacity = 256
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: (2 * capacity) / 8 }).map((k) => (U32 - 8 * k) % U32),
        fc.array(
          fc.oneof(
            { weight: 4, arbitrary: fc.integer({ min: 0, max: 8 }) },
            { weight: 1, arbitrary: fc.integer({ min: 0, max: capacity / 2 - 8 }) },
            { weight: 2, arbitrary: fc.constant(-1) },
          ),
          { minLength: 1, maxLength: 300 },
        ),
        (start, script) => {
          const sab = createRingBuffer(capacity, start)
          const writer = new RingWriter(sab)
          const reader = new RingReader(sab)
          const fifo = new AckFifo(capacity / 8)
          for (const size of script) {
            if (size < 0) {
              // Release whatever was written so far, then settle it as the lane does.
              writer.publish()
              while (reader.next() >= 0);
              reader.release()
              settleUpTo(fifo, writer.released)
              continue
            }
            const wasFull = fifo.full
            if (writer.write(new Uint8Array(size))) {
              eq(wasFull, false, 'FIFO full while the ring took a record')
              fifo.push(writer.cursor, undefined)
            }
            if (fifo.size * 8 > writer.backlog) throw new Error('more entries than records fit')
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})
