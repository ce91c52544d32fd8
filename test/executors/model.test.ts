import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { BulkExecutor } from '../../src/executors/index.js'

type Op = { kind: 'add'; count: number } | { kind: 'flush' } | { kind: 'tick'; ms: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), count: fc.integer({ min: 1, max: 7 }) }),
  fc.record({ kind: fc.constant('flush' as const) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 30 }) }),
)

afterEach(() => {
  vi.useRealTimers()
})

describe('BulkExecutor model', () => {
  it('executes every added item exactly once, in order, one batch at a time, none over maxItems', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { maxLength: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 3 }),
        async (ops, maxItems, delayTicks) => {
          vi.useFakeTimers()
          const executed: number[] = []
          let inFlight = 0
          let maxInFlight = 0
          let oversized = 0
          const ex = new BulkExecutor<number>(
            async (batch) => {
              inFlight++
              maxInFlight = Math.max(maxInFlight, inFlight)
              if (batch.length > maxItems) oversized++
              // A slow writer: a few timer ticks per batch.
              for (let i = 0; i < delayTicks; i++) await new Promise((r) => setTimeout(r, 5))
              executed.push(...batch)
              inFlight--
            },
            { maxItems, intervalMs: 20 },
          )
          let next = 0
          const pending: Promise<void>[] = []
          for (const o of ops) {
            if (o.kind === 'add') {
              for (let i = 0; i < o.count; i++) pending.push(ex.add(next++))
            } else if (o.kind === 'flush') {
              pending.push(ex.flush())
            } else {
              await vi.advanceTimersByTimeAsync(o.ms)
            }
          }
          const closed = ex.close()
          await vi.runAllTimersAsync()
          await closed
          await Promise.all(pending)
          vi.useRealTimers()
          expect(executed).toEqual(Array.from({ length: next }, (_, i) => i))
          expect(maxInFlight).toBeLessThanOrEqual(1)
          expect(oversized).toBe(0)
          expect(ex.pending).toBe(0)
        },
      ),
      { numRuns: 150 },
    )
  })
})
