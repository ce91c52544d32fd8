import { describe, expect, it } from 'vitest'
import { isConveyorError } from '../../dist/src/index.js'
import { fixture, makeQueue, rejection, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('consume()', () => {
  it('pulls a sync iterable and an async source of envelopes', async () => {
    const queue = makeQueue({ handler: fixture('work.mjs'), threads: 2, ordering: 'key' })
    await queue.start()
    expect(await queue.consume(Array.from({ length: 1000 }, (_, id) => ({ id })))).toEqual({
      consumed: 1000,
      refused: [],
    })
    const acked: number[][] = [[], [], []]
    async function* envelopes() {
      for (let id = 0; id < 600; id++) {
        if (id % 100 === 0) await sleep(1)
        yield { value: { id }, key: id % 3, ack: () => acked[id % 3].push(id) }
      }
    }
    expect(await queue.consume(envelopes(), { envelopes: true })).toEqual({
      consumed: 600,
      refused: [],
    })
    await waitFor(() => acked.flat().length === 600, 'the acks')
    for (let k = 0; k < 3; k++) {
      expect(acked[k]).toEqual(Array.from({ length: 200 }, (_, i) => i * 3 + k)) // key order
    }
    expect((await queue.stop()).pushed).toBe(1600)
  })

  it('ends when the queue stops: the refused item is nacked, the source closed', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 2,
      laneBytes: 4096,
      workerData: { spinUs: 1000 },
    })
    await queue.start()
    const settled = new Map<number, string>()
    let pulled = 0
    let closed = false
    async function* source() {
      try {
        for (let id = 0; ; id++) {
          pulled++
          yield {
            value: { id },
            ack: () => settled.set(id, `${settled.get(id) ?? ''}ack`),
            nack: (e: Error & { code?: string }) =>
              settled.set(id, `${settled.get(id) ?? ''}nack:${e.code}`),
          }
        }
      } finally {
        closed = true
      }
    }
    const consuming = queue.consume(source(), { envelopes: true })
    await sleep(200)
    const report = await queue.stop({ timeoutMs: 100 })
    const { consumed } = await consuming
    expect(closed).toBe(true)
    expect(consumed).toBe(report.pushed)
    expect(pulled).toBe(consumed + 1) // the one being pushed when stop() came
    for (const m of report.unprocessed as { id: number }[]) settled.set(m.id, 'unprocessed')
    const outcomes = [...settled.values()]
    expect(settled.size).toBe(pulled)
    expect(outcomes.filter((o) => o === 'nack:QUEUE_STOPPED')).toHaveLength(1)
    expect(outcomes.filter((o) => o === 'ack')).toHaveLength(report.completed)
    expect(outcomes.filter((o) => o === 'unprocessed')).toHaveLength(report.unprocessed.length)
  })

  it('rejects with the push error (and nacks the item) when an item cannot be pushed', async () => {
    const queue = makeQueue({ handler: fixture('work.mjs'), threads: 1 })
    await queue.start()
    let nacked: Error | undefined
    let closed = false
    async function* source() {
      try {
        yield { value: { ok: 1 } }
        yield { value: { bad: 1n }, nack: (e: Error) => (nacked = e) }
        yield { value: { never: 1 } }
      } finally {
        closed = true
      }
    }
    const err = await rejection(queue.consume(source(), { envelopes: true }))
    expect(isConveyorError(err, 'ENCODE_FAILED')).toBe(true)
    expect(nacked).toBe(err)
    expect(closed).toBe(true)
    expect(queue.stats().pushed).toBe(1)
  })

  it('keeps up to `concurrency` pushes waiting; on stop every pulled item is accounted for', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 1,
      laneBytes: 4096,
      workerData: { spinUs: 1000 },
    })
    await queue.start()
    let pulled = 0
    function* source() {
      for (let id = 0; ; id++) {
        pulled++
        yield { id }
      }
    }
    const consuming = queue.consume(source(), { concurrency: 8 })
    await sleep(100)
    // Never more pulled than accepted plus the pushes allowed to wait.
    expect(pulled - queue.stats().pushed).toBeLessThanOrEqual(8)
    expect(queue.stats().waiting).toBeGreaterThan(1)
    const report = await queue.stop({ timeoutMs: 50 })
    const { consumed, refused } = await consuming
    expect(consumed).toBe(report.pushed)
    expect(refused.length).toBeGreaterThan(1)
    expect(consumed + refused.length).toBe(pulled)
    expect(report.completed + report.unprocessed.length).toBe(report.pushed)
    // In order: the refused items are the last ones pulled.
    expect((refused as { id: number }[]).map((m) => m.id)).toEqual(
      Array.from({ length: refused.length }, (_, i) => consumed + i),
    )
  })

  it('refuses a concurrency below 1 with INVALID_OPTION', async () => {
    const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 1 })
    await queue.start()
    const err = await rejection(queue.consume([1, 2], { concurrency: 0 }))
    expect(err.code).toBe('INVALID_OPTION')
  })
})
