import { describe, expect, it } from 'vitest'
import { laneOfKey } from '../../dist/src/queue/dispatcher.js'
import { fixture, makeQueue, rejection, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('resize()', () => {
  it("keeps per-key order with ordering 'key' while lanes are added and removed under load", async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 1,
      ordering: 'key',
      laneBytes: 8192,
      workerData: { spinUs: 50 },
    })
    const threadEvents: number[] = []
    queue.on('threads', (n) => threadEvents.push(n))
    await queue.start()
    const KEYS = 6
    const PER_KEY = 400
    const acked: number[][] = Array.from({ length: KEYS }, () => [])
    const producing = (async () => {
      for (let seq = 0; seq < PER_KEY; seq++) {
        for (let key = 0; key < KEYS; key++) {
          await queue.push({ key, seq }, { key: `k${key}`, ack: () => acked[key].push(seq) })
        }
      }
    })()
    // Resize while the lanes hold a backlog: up, down, up again.
    for (const threads of [2, 1, 2]) {
      await new Promise((resolve) => setTimeout(resolve, 30))
      await queue.resize(threads)
      expect(queue.stats().threads).toBe(threads)
    }
    await producing
    const report = await queue.stop()
    expect(report.unprocessed).toEqual([])
    expect(report.completed).toBe(KEYS * PER_KEY)
    for (let key = 0; key < KEYS; key++) {
      expect(acked[key]).toEqual(Array.from({ length: PER_KEY }, (_, i) => i))
    }
    expect(threadEvents).toEqual([1, 2, 1, 2])
  })

  it("ordering 'key': only the keys that change lane wait for their old lane; others go on", async () => {
    const journal = new Int32Array(new SharedArrayBuffer(4 * 64))
    const gate = new Int32Array(new SharedArrayBuffer(4))
    const queue = makeQueue({
      handler: fixture('edge-journal.mjs'),
      threads: 1,
      ordering: 'key',
      workerData: { journal: journal.buffer, gate: gate.buffer },
    })
    await queue.start()
    const keyOn = (lane: number) => {
      for (let i = 0; ; i++) if (laneOfKey(`k${i}`, 2) === lane) return `k${i}`
    }
    const stays = keyOn(0)
    const moves = keyOn(1)
    // Lane 0 holds messages of both keys, and cannot finish them (the gate is shut).
    await queue.push({ id: 1 }, { key: stays })
    await queue.push({ id: 2 }, { key: moves })
    const resizing = queue.resize(2)
    await waitFor(() => queue.stats().threads === 2, 'the second lane')
    // A key that stays on lane 0 is not held by the resize…
    await queue.push({ id: 3 }, { key: stays })
    // …one that moves to the new lane waits until lane 0 finished its message 2.
    let movedIn = false
    const moving = queue.push({ id: 4 }, { key: moves }).then(() => {
      movedIn = true
    })
    await sleep(50)
    expect(movedIn).toBe(false)
    Atomics.store(gate, 0, 1)
    Atomics.notify(gate, 0)
    await Promise.all([moving, resizing])
    await queue.onIdle()
    const order = Array.from(journal.subarray(1, 1 + Atomics.load(journal, 0)))
    expect(order.filter((id) => id === 1 || id === 3)).toEqual([1, 3])
    expect(order.filter((id) => id === 2 || id === 4)).toEqual([2, 4])
  })

  it("spreads work over added lanes with ordering 'none' and settles every message", async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 1,
      workerData: { spinUs: 20 },
    })
    await queue.start()
    let acks = 0
    const N = 4000
    for (let i = 0; i < N; i++) {
      if (i === 1000) await queue.resize(2)
      await queue.push(i, { ack: () => acks++ })
    }
    const lanes = queue.stats().lanes
    expect(lanes).toHaveLength(2)
    const report = await queue.stop()
    expect(acks + report.unprocessed.length).toBe(N)
    expect(report.unprocessed).toEqual([])
    expect(lanes[1].handled + lanes[1].inFlight).toBeGreaterThan(0)
  })

  it('refuses a thread count outside 1..threads.max with INVALID_OPTION', async () => {
    const queue = makeQueue({ handler: fixture('echo.mjs'), threads: { min: 1, max: 2 } })
    await queue.start()
    for (const bad of [0, 3, 1.5, Number.NaN]) {
      const err = await rejection(queue.resize(bad))
      expect(err.code).toBe('INVALID_OPTION')
      expect(err.message).toMatch(/1 to 2/)
    }
    expect(await queue.run('still here')).toBe('still here')
  })
})
