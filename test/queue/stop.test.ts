import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, rejection, sleep, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

interface Msg {
  id: number
  pad: string
  nested: { id: number; list: number[] }
}

/** Deterministic content per id, so a message that comes back can be checked intact. */
function message(id: number): Msg {
  return { id, pad: `${'ü€'.repeat(id % 23)}#${id}`, nested: { id, list: [id, id * 2, -id] } }
}

describe('stop() under full load', () => {
  it('accounts for every accepted message and refuses waiting and later pushes', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 2,
      laneBytes: 65536,
      workerData: { spinUs: 2000 },
    })
    await queue.start()
    const N = 9000
    const state = new Int8Array(N) // 1 accepted, -1 refused
    const acks = new Int32Array(N)
    const nacks = new Int32Array(N)
    const refusals: (Error & { code?: string })[] = []
    const pushes = Array.from({ length: N }, (_, id) =>
      queue.push(message(id), { ack: () => acks[id]++, nack: () => nacks[id]++ }).then(
        () => {
          state[id] = 1
        },
        (err) => {
          state[id] = -1
          refusals.push(err)
        },
      ),
    )
    // run() callers that wait for room when stop() comes are refused too.
    const runs = [rejection(queue.run(message(N))), rejection(queue.run(message(N + 1)))]
    await sleep(50)
    const before = queue.stats()
    expect(before.waiting).toBeGreaterThan(0)
    expect(before.waiting + before.pushed).toBe(N + 2)

    const stopping = queue.stop({ timeoutMs: 200 })
    // A push while stopping, and after stopped.
    const duringStop = await rejection(queue.push(message(N + 10)))
    const report = await stopping
    const afterStop = await rejection(queue.push(message(N + 11)))
    await Promise.all(pushes)
    for (const run of runs) expect(await run).toMatchObject({ code: 'QUEUE_STOPPED' })
    await sleep(20)

    expect(duringStop.code).toBe('QUEUE_STOPPED')
    expect(afterStop.code).toBe('QUEUE_STOPPED')
    expect(refusals.length).toBeGreaterThan(0) // some pushes were still waiting for room
    for (const err of refusals) expect(err.code).toBe('QUEUE_STOPPED')
    expect(state.every((s) => s !== 0)).toBe(true)

    const accepted = state.reduce((n, s) => n + (s === 1 ? 1 : 0), 0)
    expect(accepted).toBe(N - refusals.length)
    expect(report.pushed).toBe(accepted)
    expect(report.drained).toBe(false)
    expect(report.durationMs).toBeGreaterThanOrEqual(190)
    expect(report.durationMs).toBeLessThan(60_000) // bounded: a hang would never return
    expect(report.deadLettered).toBe(0)
    expect(report.completed + report.deadLettered + report.unprocessed.length).toBe(report.pushed)
    expect(report.completed).toBeGreaterThan(0)
    expect(
      report.unprocessed.length,
      JSON.stringify({ ...report, unprocessed: report.unprocessed.length }),
    ).toBeGreaterThan(0)

    // Every unprocessed message comes back decoded and intact, once, and was never acked.
    const returned = new Int32Array(N)
    for (const m of report.unprocessed as Msg[]) {
      expect(m).toEqual(message(m.id))
      returned[m.id]++
    }
    const problems: string[] = []
    for (let id = 0; id < N; id++) {
      const settled = acks[id] + nacks[id] + returned[id]
      if (state[id] === 1 && settled !== 1) problems.push(`accepted ${id} settled ${settled} times`)
      if (state[id] === -1 && settled !== 0) problems.push(`refused ${id} settled ${settled} times`)
    }
    expect(problems.slice(0, 10)).toEqual([])
    expect(acks.reduce((a, b) => a + b, 0)).toBe(report.completed)
    // Lane order: the report is each lane's leftovers in push order, lane after lane.
    const ids = (report.unprocessed as Msg[]).map((m) => m.id)
    const descents = ids.filter((id, i) => i > 0 && id < ids[i - 1]).length
    expect(descents).toBeLessThanOrEqual(1)

    expect(queue.stats().pushed).toBe(accepted)
    // stop() again returns the same report.
    expect(await queue.stop()).toBe(report)
  })

  it('drains everything when the lanes empty before the timeout', async () => {
    const queue = makeQueue({ handler: fixture('work.mjs'), threads: 2 })
    await queue.start()
    let acks = 0
    for (let id = 0; id < 2000; id++) await queue.push(message(id), { ack: () => acks++ })
    const report = await queue.stop({ timeoutMs: 10_000 })
    expect(report).toMatchObject({ pushed: 2000, completed: 2000, unprocessed: [], drained: true })
    expect(acks).toBe(2000)
  })
})
