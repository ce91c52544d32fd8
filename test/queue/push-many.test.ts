import { describe, expect, it } from 'vitest'
import { ConveyorError, type Queue } from '../../dist/src/index.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

interface Msg {
  id: number
  fail?: boolean
  pad?: string
}

function journal(size: number) {
  return new Int32Array(new SharedArrayBuffer((size + 1) * 4))
}
function handled(j: Int32Array): number[] {
  return Array.from(j.subarray(1, 1 + Atomics.load(j, 0)))
}

async function startQueue(
  options: {
    threads?: number
    laneBytes?: number
    ordering?: 'key' | 'none'
    maxWaiting?: number
    gate?: Int32Array
    size?: number
  } = {},
) {
  const j = journal(options.size ?? 4096)
  const queue = makeQueue({
    handler: fixture('edge-journal.mjs'),
    threads: options.threads ?? 2,
    laneBytes: options.laneBytes,
    ordering: options.ordering,
    maxWaiting: options.maxWaiting,
    retry: { attempts: 2, backoffMs: 1 },
    workerData: { journal: j.buffer, gate: options.gate?.buffer },
  }) as Queue<Msg, Msg>
  await queue.start()
  return { queue, journal: j }
}

/** One thread, one 4 KiB lane, codec 'string': the handler journals Number(message). */
async function startStringQueue(size: number) {
  const j = journal(size)
  const queue = makeQueue({
    handler: fixture('string-journal.mjs'),
    threads: 1,
    codec: 'string',
    laneBytes: 4096,
    workerData: { journal: j.buffer },
  }) as Queue<string, void>
  await queue.start()
  return { queue, journal: j }
}

const ids = (n: number, from = 0): Msg[] => Array.from({ length: n }, (_, i) => ({ id: from + i }))

describe('pushMany()', () => {
  it('accepts every message in one call; ack once per message, by index', async () => {
    const { queue, journal: j } = await startQueue()
    const acked = new Array<number>(1000).fill(0)
    await queue.pushMany(ids(1000), { ack: (i) => acked[i]++ })
    await queue.onIdle()
    expect(acked.every((n) => n === 1)).toBe(true)
    expect(handled(j).sort((a, b) => a - b)).toEqual(ids(1000).map((m) => m.id))
    expect(queue.stats()).toMatchObject({ pushed: 1000, completed: 1000 })
  })

  it('publishes every lane it wrote before it resolves: workers take the whole batch while the event loop is blocked', async () => {
    const { queue, journal: j } = await startQueue({ threads: 2 })
    await queue.pushMany(ids(300))
    // No event-loop turn from here on: no deferred flush can publish what the call left.
    const idle = new Int32Array(new SharedArrayBuffer(4))
    for (let slice = 0; slice < 500 && Atomics.load(j, 0) < 300; slice++)
      Atomics.wait(idle, 0, 0, 10)
    expect(Atomics.load(j, 0)).toBe(300)
    await queue.onIdle()
  })

  it('keeps per-key push order across batches (a key function, or one key for all)', async () => {
    const { queue, journal: j } = await startQueue({ ordering: 'key', threads: 2 })
    const keyOf = (m: Msg) => m.id % 7
    for (let b = 0; b < 10; b++) await queue.pushMany(ids(100, b * 100), { key: keyOf })
    await queue.pushMany(ids(50, 1000), { key: 'one' })
    await queue.onIdle()
    const order = handled(j)
    expect(order).toHaveLength(1050)
    for (let k = 0; k < 7; k++) {
      const ofKey = order.filter((id) => id < 1000 && id % 7 === k)
      expect(ofKey).toEqual([...ofKey].sort((a, b) => a - b))
    }
    expect(order.filter((id) => id >= 1000)).toEqual(ids(50, 1000).map((m) => m.id))
  })

  it('waits for room when the batch is larger than the lanes, in order', async () => {
    const { queue, journal: j } = await startQueue({ threads: 1, laneBytes: 4096 })
    const pad = 'x'.repeat(200)
    const batch = ids(500).map((m) => ({ ...m, pad }))
    const acked: number[] = []
    await queue.pushMany(batch, { ack: (i) => acked.push(i) })
    await queue.onIdle()
    expect(handled(j)).toEqual(batch.map((m) => m.id))
    expect(acked).toEqual(batch.map((_, i) => i))
  })

  it('a batch that waits writes what was pushed, even if the caller reuses its array (codec string)', async () => {
    const { queue, journal: j } = await startStringQueue(2000)
    // A 4 KiB lane takes 256 of these at most: most of the batch waits for room.
    const batch = Array.from({ length: 2000 }, (_, i) => String(i).padStart(8, '0'))
    const pushed = [...batch]
    const written = queue.pushMany(batch)
    batch.fill('99999999')
    await written
    await queue.onIdle()
    expect(handled(j)).toEqual(pushed.map(Number))
  })

  it('acks that push into a full lane: each push waits, every message is acked once, the batch in order', async () => {
    const { queue, journal: j } = await startStringQueue(4000)
    const acked: number[] = []
    const followUps: Promise<void>[] = []
    let followUpsAcked = 0
    // Empty messages: 8-byte records, so the lane's ack FIFO (4096/8 entries) fills with its
    // ring, and an ack's push into a full lane asks it to apply progress while it does so.
    const batch = new Array<string>(1000).fill('')
    await queue.pushMany(batch, {
      ack: (i) => {
        acked.push(i)
        // Two for each one settled: the lane fills while its acks run.
        for (let k = 0; k < 2; k++) followUps.push(queue.push('', { ack: () => followUpsAcked++ }))
      },
    })
    await waitFor(() => acked.length === 1000, 'every ack of the batch')
    await Promise.all(followUps)
    await queue.onIdle()
    expect(acked).toEqual(batch.map((_, i) => i))
    expect(followUpsAcked).toBe(2000)
    expect(Atomics.load(j, 0)).toBe(3000)
    expect(queue.stats()).toMatchObject({ pushed: 3000, completed: 3000 })
  })

  it('writes nothing unless every message encodes, fits and has a valid key', async () => {
    const { queue } = await startQueue({ laneBytes: 4096 })
    const circular: Record<string, unknown> = { id: 3 }
    circular.self = circular
    const cases: [Promise<void>, string, string][] = [
      [queue.pushMany([...ids(3), circular as unknown as Msg]), 'ENCODE_FAILED', 'index 3'],
      [
        queue.pushMany([...ids(5), { id: 5, pad: 'y'.repeat(5000) }]),
        'MESSAGE_TOO_LARGE',
        'index 5',
      ],
      [
        queue.pushMany(ids(4), { key: (m) => (m.id === 2 ? (Number.NaN as number) : m.id) }),
        'INVALID_OPTION',
        'message 2',
      ],
      [queue.pushMany(ids(2), { key: {} as unknown as string }), 'INVALID_OPTION', 'key'],
      [queue.pushMany(ids(2), { ack: 'x' as unknown as () => void }), 'INVALID_OPTION', 'ack'],
      [queue.pushMany({ id: 1 } as unknown as Msg[]), 'INVALID_OPTION', 'array'],
    ]
    for (const [call, code, words] of cases) {
      const error = await rejection(call)
      expect(error).toBeInstanceOf(ConveyorError)
      expect(error.code).toBe(code)
      expect(error.message).toContain(words)
    }
    await queue.onIdle()
    expect(queue.stats().pushed).toBe(0)
    await queue.pushMany([])
    expect(queue.stats().pushed).toBe(0)
  })

  it('dead-letters a failing message of the batch: nack(error, index, message)', async () => {
    const { queue } = await startQueue()
    const nacked: [number, unknown][] = []
    const acked: number[] = []
    const batch: Msg[] = [{ id: 0 }, { id: 1, fail: true }, { id: 2 }]
    const letters: unknown[] = []
    queue.on('dead-letter', (d) => letters.push(d.message))
    await queue.pushMany(batch, {
      ack: (i) => acked.push(i),
      nack: (error, i, message) => {
        expect(error.message).toBe('fail 1')
        nacked.push([i, message])
      },
    })
    await queue.onIdle()
    expect(acked.sort()).toEqual([0, 2])
    expect(nacked).toEqual([[1, { id: 1, fail: true }]])
    expect(letters).toEqual([{ id: 1, fail: true }])
  })

  it('stopped while part of the batch waits: rejects, and says how many went in', async () => {
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const { queue } = await startQueue({ threads: 1, laneBytes: 4096, gate })
    const pad = 'z'.repeat(300)
    const batch = ids(100).map((m) => ({ ...m, pad }))
    const pushing = queue.pushMany(batch)
    await waitFor(() => queue.stats().pushed > 0, 'part of the batch to enter')
    const stopping = queue.stop({ timeoutMs: 100 })
    const error = await rejection(pushing)
    expect(error).toMatchObject({ code: 'QUEUE_STOPPED' })
    Atomics.store(gate, 0, 1)
    Atomics.notify(gate, 0)
    const report = await stopping
    const accepted = (error as ConveyorError).accepted!
    expect(accepted).toBeGreaterThan(0)
    expect(accepted).toBeLessThan(100)
    // Every accepted message is accounted for: handled, or handed back, in order.
    expect(report.pushed).toBe(accepted)
    expect(report.completed + report.unprocessed.length).toBe(accepted)
    expect(report.unprocessed.map((m) => m.id)).toEqual(
      batch.slice(report.completed, accepted).map((m) => m.id),
    )
  })

  it('with maxWaiting 0, a batch that does not fit rejects QUEUE_FULL with accepted', async () => {
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const { queue } = await startQueue({ threads: 1, laneBytes: 4096, maxWaiting: 0, gate })
    const pad = 'q'.repeat(300)
    const error = await rejection(queue.pushMany(ids(100).map((m) => ({ ...m, pad }))))
    expect(error).toMatchObject({ code: 'QUEUE_FULL' })
    const accepted = (error as ConveyorError).accepted!
    expect(accepted).toBeGreaterThan(0)
    expect(queue.stats().pushed).toBe(accepted)
    Atomics.store(gate, 0, 1)
    Atomics.notify(gate, 0)
    await queue.onIdle()
    expect(queue.stats().completed).toBe(accepted)
  })

  it('batches refused by one shared signal each say their own accepted', async () => {
    // Regression: every call aborted by one signal got the same AbortError object, and each
    // batch's withdrawal wrote its `accepted` on it: all said the last batch's count.
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const { queue } = await startQueue({ threads: 1, laneBytes: 4096, gate })
    const pad = 'a'.repeat(300)
    const controller = new AbortController()
    const { signal } = controller
    const first = queue.pushMany(
      ids(20).map((m) => ({ ...m, pad })),
      { signal },
    )
    const second = queue.pushMany(
      ids(5, 100).map((m) => ({ ...m, pad })),
      { signal },
    )
    const accepted = queue.stats().pushed
    expect(accepted).toBeGreaterThan(0)
    expect(accepted).toBeLessThan(20)
    controller.abort()
    const errors = [await rejection(first), await rejection(second)]
    expect(errors[0]).toMatchObject({ name: 'AbortError', accepted })
    expect(errors[1]).toMatchObject({ name: 'AbortError', accepted: 0 })
    expect(errors[0]).not.toBe(errors[1])
    Atomics.store(gate, 0, 1)
    Atomics.notify(gate, 0)
    await queue.onIdle()
    const stats = queue.stats()
    expect(stats.pushed).toBe(accepted)
    expect(stats.completed + stats.aborted).toBe(accepted)
  })

  it('refuses before start and after stop', async () => {
    const { queue } = await startQueue()
    await queue.stop()
    expect(await rejection(queue.pushMany(ids(2)))).toMatchObject({ code: 'QUEUE_STOPPED' })
    const fresh = makeQueue({ handler: fixture('edge-journal.mjs'), threads: 1 })
    expect(await rejection(fresh.pushMany([1]))).toMatchObject({ code: 'QUEUE_NOT_STARTED' })
  })
})
