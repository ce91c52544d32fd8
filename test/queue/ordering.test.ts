import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, prng, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

interface Msg {
  id: number
  k: number
  seq: number
  fail: number
  die: 0 | 1 | 2
}

describe("ordering 'key'", () => {
  it('settles each key in push order across retries, dead letters and worker crashes', async () => {
    const KEYS = 8
    const N = 8000
    const ATTEMPTS = 3
    const rand = prng(7)
    const nextSeq = new Array<number>(KEYS).fill(0)
    const msgs: Msg[] = []
    for (let id = 0; id < N; id++) {
      const k = Math.floor(rand() * KEYS)
      const r = rand()
      const fail = r < 0.01 ? 1 : r < 0.02 ? 2 : r < 0.025 ? 3 : 0
      msgs.push({ id, k, seq: nextSeq[k]++, fail, die: 0 })
    }
    // Crashes in the middle: some dying once (then redelivered), some always (dead-lettered).
    for (const [at, die] of [
      [2000, 1],
      [2666, 2],
      [4000, 1],
      [5333, 2],
      [6000, 1],
      [6001, 1],
    ] as const) {
      msgs[at].die = die
      msgs[at].fail = 0
    }
    const last = new SharedArrayBuffer(4 * KEYS)
    new Int32Array(last).fill(-1)
    const calls = new SharedArrayBuffer(4 * N)
    const violations = new SharedArrayBuffer(4)

    const queue = makeQueue({
      handler: fixture('order.mjs'),
      threads: 2,
      ordering: 'key',
      // Small lanes: the ring wraps many times and pushes wait for room.
      laneBytes: 16384,
      retry: { attempts: ATTEMPTS, backoffMs: 1 },
      workerData: { last, calls, violations },
    })
    /** Per key, the seqs in the order the main thread settled them (ack or dead letter). */
    const settledOrder: number[][] = Array.from({ length: KEYS }, () => [])
    const outcome = new Array<string>(N).fill('')
    const orderErrors: string[] = []
    const exitsByLane = new Map<number, number>()
    queue.on('failed', (error) => {
      if (error.message.startsWith('order')) orderErrors.push(error.message)
    })
    queue.on('worker-exit', ({ lane }) => exitsByLane.set(lane, (exitsByLane.get(lane) ?? 0) + 1))
    let settled = 0
    await queue.start()

    const BATCH = 1000
    for (let from = 0; from < N; from += BATCH) {
      // A burst without awaiting each push: most of it waits for room, in order.
      await Promise.all(
        msgs.slice(from, from + BATCH).map((m) =>
          queue.push(m, {
            key: `key-${m.k}`,
            ack: () => {
              settledOrder[m.k].push(m.seq)
              outcome[m.id] += 'ack'
              settled++
            },
            nack: (error) => {
              settledOrder[m.k].push(m.seq)
              outcome[m.id] += (error as Error & { code?: string }).code ?? 'handler'
              settled++
            },
          }),
        ),
      )
    }
    await waitFor(() => settled >= N, 'every message to settle', 60_000)
    const report = await queue.stop()

    expect(orderErrors).toEqual([])
    expect(new Int32Array(violations)[0]).toBe(0)
    for (let k = 0; k < KEYS; k++) {
      const pushedSeqs = Array.from({ length: nextSeq[k] }, (_, i) => i)
      expect(settledOrder[k]).toEqual(pushedSeqs)
    }
    for (const m of msgs) {
      const want = m.die === 2 ? 'WORKER_DIED' : m.fail >= ATTEMPTS ? 'handler' : 'ack'
      expect(outcome[m.id], JSON.stringify(m)).toBe(want)
    }
    const callsSeen = new Int32Array(calls)
    for (const m of msgs.filter((x) => x.die !== 0)) {
      expect(callsSeen[m.id], JSON.stringify(m)).toBe(m.die === 1 ? 2 : ATTEMPTS)
    }
    expect(exitsByLane.size).toBe(2) // both lanes crashed (and restarted) mid-stream
    expect([...exitsByLane.values()].reduce((a, b) => a + b, 0)).toBe(
      msgs.reduce((n, m) => n + (m.die === 1 ? 1 : m.die === 2 ? ATTEMPTS : 0), 0),
    )
    expect(report).toMatchObject({ pushed: N, unprocessed: [], drained: true })
    expect(report.completed + report.deadLettered).toBe(N)
  })
})
