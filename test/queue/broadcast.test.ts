import { describe, expect, it } from 'vitest'
// Internal: which lane a key lands on, to address each lane's worker with run().
import { laneOfKey } from '../../dist/src/queue/dispatcher.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

const THREADS = 2

/** A key that ordering 'key' routes to `lane`. */
function keyFor(lane: number): string {
  for (let i = 0; ; i++) if (laneOfKey(`k${i}`, THREADS) === lane) return `k${i}`
}

interface Seen {
  lane: number
  threadId: number
  events: unknown[]
}

describe('broadcast', () => {
  it("reaches every worker's onEvent, busy or idle, and the worker that replaced a dead one", async () => {
    const hitsBuffer = new SharedArrayBuffer(4 * THREADS)
    const hits = new Int32Array(hitsBuffer)
    const queue = makeQueue({
      handler: fixture('events.mjs'),
      threads: THREADS,
      ordering: 'key',
      retry: { attempts: 1, backoffMs: 0 },
      workerData: { hits: hitsBuffer },
    })
    await queue.start()
    const keys = [keyFor(0), keyFor(1)]
    const seen = (lane: number) => queue.run<Seen>({ op: 'events' }, { key: keys[lane] })

    const first = { n: 1, nested: { list: [1, 2, { deep: true }] } }
    await queue.broadcast(first)
    // Resolved only once every worker ran its (async) onEvent.
    expect([...hits]).toEqual([1, 1])
    const before = await Promise.all([seen(0), seen(1)])
    expect(before.map((s) => s.lane)).toEqual([0, 1])
    for (const s of before) expect(s.events).toEqual([first])
    expect(before[0].threadId).not.toBe(before[1].threadId)

    // Busy lanes: both are working through a backlog when the event comes.
    let acks = 0
    for (let i = 0; i < 100; i++) {
      await queue.push({ op: 'spin', ms: 2 }, { key: keys[i % 2], ack: () => acks++ })
    }
    await queue.broadcast({ n: 2 })
    expect([...hits]).toEqual([2, 2])
    await waitFor(() => acks === 100, 'the backlog')

    // Lane 0's worker dies; its replacement gets later events (not earlier ones).
    const exits: number[] = []
    queue.on('worker-exit', ({ lane }) => exits.push(lane))
    const died = await rejection(queue.run({ op: 'die' }, { key: keys[0] }))
    expect(died.code).toBe('WORKER_DIED')
    expect(exits).toEqual([0])
    await queue.broadcast({ n: 3 })
    expect([...hits]).toEqual([3, 3])
    const after = await Promise.all([seen(0), seen(1)])
    expect(after[0].threadId).not.toBe(before[0].threadId)
    expect(after[0].events).toEqual([{ n: 3 }])
    expect(after[1].threadId).toBe(before[1].threadId)
    expect(after[1].events).toEqual([first, { n: 2 }, { n: 3 }])
  })

  // The lane loop gives its event loop a turn every few ms of handler calls, so control calls
  // (broadcast) reach a busy worker between messages, not after its whole backlog (a 10 ms
  // handler with 50 queued records a lane would otherwise hold them for 500 ms).
  it('reaches a busy worker between handler calls, not after its whole backlog', async () => {
    const hitsBuffer = new SharedArrayBuffer(4 * THREADS)
    const queue = makeQueue({
      handler: fixture('events.mjs'),
      threads: THREADS,
      ordering: 'key',
      workerData: { hits: hitsBuffer },
    })
    await queue.start()
    let acks = 0
    for (let i = 0; i < 100; i++) {
      await queue.push({ op: 'spin', ms: 10 }, { key: keyFor(i % 2), ack: () => acks++ })
    }
    await queue.broadcast({ n: 1 })
    // Counted, not timed: messages handled before every worker ran onEvent. Expected a few
    // (one handler call, then a turn of the event loop); after the whole backlog, ~100.
    const handledBefore = queue.stats().lanes.reduce((n, lane) => n + lane.handled, 0)
    await waitFor(() => acks === 100, 'the backlog')
    expect(handledBefore).toBeLessThan(50)
  })

  it('rejects when an onEvent throws; the workers go on', async () => {
    const queue = makeQueue({
      handler: fixture('events.mjs'),
      threads: THREADS,
      workerData: { hits: new SharedArrayBuffer(4 * THREADS) },
    })
    await queue.start()
    const err = await rejection(queue.broadcast({ throw: 'onEvent refused' }))
    expect(err.message).toContain('onEvent refused')
    expect(await queue.run({ op: 'events' })).toMatchObject({ events: [] })
    await queue.broadcast({ n: 1 })
  })

  it('runs setup once per worker before start() resolves, teardown after the drain', async () => {
    const lifecycle = new Int32Array(new SharedArrayBuffer(8))
    const queue = makeQueue({
      handler: fixture('events.mjs'),
      threads: THREADS,
      workerData: { hits: new SharedArrayBuffer(4 * THREADS), lifecycle: lifecycle.buffer },
    })
    await queue.start()
    expect([...lifecycle]).toEqual([THREADS, 0])
    for (let i = 0; i < 50; i++) await queue.run({ op: 'spin', ms: 0 })
    expect([...lifecycle]).toEqual([THREADS, 0])
    await queue.stop()
    expect([...lifecycle]).toEqual([THREADS, THREADS])
  })

  it('rejects before start and after stop', async () => {
    const queue = makeQueue({
      handler: fixture('events.mjs'),
      threads: 1,
      workerData: { hits: new SharedArrayBuffer(4) },
    })
    expect(await rejection(queue.broadcast({}))).toMatchObject({ code: 'QUEUE_NOT_STARTED' })
    await queue.start()
    await queue.stop()
    expect(await rejection(queue.broadcast({}))).toMatchObject({ code: 'QUEUE_STOPPED' })
  })
})
