import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Queue } from '../../dist/src/index.js'
import { processErrors, within } from './edges-helpers.js'
import { fixture, makeQueue, rejection, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

// Every test here also fails on an unhandled rejection or uncaught exception in this process
// (vitest reports those too, but not against the test that caused them).
let processErrs: ReturnType<typeof processErrors>
beforeEach(() => {
  processErrs = processErrors()
})
afterEach(() => {
  processErrs.dispose()
  expect(processErrs.seen.map(String)).toEqual([])
})

const journalHandler = fixture('edge-journal.mjs')

/** ids the handler journaled (edge-journal.mjs), in order. */
function journaled(journal: SharedArrayBuffer): number[] {
  const j = new Int32Array(journal)
  return Array.from(j.subarray(1, 1 + j[0]))
}

/**
 * A one-lane queue whose handler blocks on a gate until the test opens it, so the lane's ring
 * fills and later pushes wait for room. Messages are ~150 bytes: ~25 fit a 4 KiB ring.
 */
async function gatedQueue(extra: { maxWaiting?: number } = {}) {
  const journal = new SharedArrayBuffer(4 * 4096)
  const gate = new SharedArrayBuffer(4)
  const queue = makeQueue({
    handler: journalHandler,
    threads: 1,
    laneBytes: 4096,
    workerData: { journal, gate },
    ...extra,
  })
  await queue.start()
  const open = () => {
    Atomics.store(new Int32Array(gate), 0, 1)
    Atomics.notify(new Int32Array(gate), 0)
  }
  return { queue, journal, open }
}

const msg = (id: number) => ({ id, pad: 'p'.repeat(128) })

/** Pushes (not awaited) until one waits for room; returns each push's outcome, by id. */
function pushUntilOneWaits(queue: Queue, acks: number[]): Promise<unknown>[] {
  const outcomes: Promise<unknown>[] = []
  for (let id = 0; id < 200 && queue.stats().waiting === 0; id++) {
    outcomes.push(
      queue.push(msg(id), { ack: () => acks[id]++ }).then(
        () => 'ok',
        (err: Error & { code?: string }) => err.code ?? String(err),
      ),
    )
  }
  return outcomes
}

describe("a 'pause' listener that throws while a push waits for room", () => {
  // Defect: 'pause' was emitted inside the waiting push's promise executor: the listener's
  // error rejected that push although the message stayed queued (and was handled later).
  it('the push still resolves, the error goes to the error event, the message is handled once', async () => {
    const { queue, journal, open } = await gatedQueue()
    const boom = new Error('pause listener exploded')
    const errors: Error[] = []
    queue.on('error', (e) => errors.push(e))
    queue.on('pause', () => {
      throw boom
    })
    const acks = new Array(200).fill(0)
    const outcomes = pushUntilOneWaits(queue, acks)
    const n = outcomes.length
    expect(queue.stats().waiting).toBe(1)
    open()
    expect(await within(Promise.all(outcomes), 'every push to settle')).toEqual(Array(n).fill('ok'))
    await waitFor(() => acks.slice(0, n).every((a) => a >= 1), 'every ack', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(acks.slice(0, n)).toEqual(Array(n).fill(1))
    expect(journaled(journal)).toEqual(Array.from({ length: n }, (_, i) => i))
    // The listener's error itself (or an error wrapping it as its cause).
    expect(errors.some((e) => e === boom || e.cause === boom)).toBe(true)
    expect(report).toMatchObject({ pushed: n, completed: n, unprocessed: [] })
  })

  // Guards the general rule: a rejected push is never handled and its ack never fires.
  it('a push refused with QUEUE_FULL is never handled and never acked', async () => {
    const { queue, journal, open } = await gatedQueue({ maxWaiting: 1 })
    const acks = new Array(200).fill(0)
    const outcomes = pushUntilOneWaits(queue, acks)
    const n = outcomes.length // the last of these is the one waiting
    const refusedId = n
    const refused = queue.push(msg(refusedId), { ack: () => acks[refusedId]++ })
    expect((await rejection(refused)).code).toBe('QUEUE_FULL')
    open()
    expect(await within(Promise.all(outcomes), 'the other pushes')).toEqual(Array(n).fill('ok'))
    await waitFor(() => acks.slice(0, n).every((a) => a >= 1), 'every ack', 20_000)
    const report = await within(queue.stop(), 'stop()')
    await sleep(20)
    expect(acks.slice(0, n)).toEqual(Array(n).fill(1))
    expect(acks[refusedId]).toBe(0)
    expect(journaled(journal)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(report).toMatchObject({ pushed: n, completed: n, unprocessed: [] })
  })
})

describe('listeners that throw never take the process down', () => {
  // Defect: 'worker-exit' was emitted unguarded inside the crash handling: the listener's
  // error became an unhandled rejection and the lane was never restarted.
  it("'worker-exit'", async () => {
    const journal = new SharedArrayBuffer(4 * 64)
    const flags = new SharedArrayBuffer(8)
    const queue = makeQueue({
      handler: journalHandler,
      threads: 1,
      workerData: { journal, flags },
    })
    queue.on('error', () => {})
    let exits = 0
    queue.on('worker-exit', () => {
      exits++
      throw new Error('worker-exit listener exploded')
    })
    await queue.start()
    const acked: number[] = []
    for (const m of [{ id: 0 }, { id: 1, die: true }, { id: 2 }])
      await queue.push(m, { ack: () => acked.push(m.id) })
    await waitFor(() => acked.length === 3, 'every message to be acked', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(exits).toBe(1)
    expect(acked).toEqual([0, 1, 2])
    expect(journaled(journal)).toEqual([0, 1, 2])
    expect(report).toMatchObject({ pushed: 3, completed: 3, deadLettered: 0, unprocessed: [] })
  })

  // Guards: 'failed' and 'dead-letter' listeners that throw.
  it("'failed' and 'dead-letter'", async () => {
    const journal = new SharedArrayBuffer(4 * 64)
    const queue = makeQueue({
      handler: journalHandler,
      threads: 1,
      retry: { attempts: 2, backoffMs: 1 },
      workerData: { journal },
    })
    queue.on('error', () => {})
    let failed = 0
    let dead = 0
    queue.on('failed', () => {
      failed++
      throw new Error('failed listener exploded')
    })
    queue.on('dead-letter', () => {
      dead++
      throw new Error('dead-letter listener exploded')
    })
    await queue.start()
    const acked: number[] = []
    const nacked: number[] = []
    for (const m of [{ id: 0 }, { id: 1, fail: true }, { id: 2 }, { id: 3, fail: true }, { id: 4 }])
      await queue.push(m, { ack: () => acked.push(m.id), nack: () => nacked.push(m.id) })
    await waitFor(() => acked.length + nacked.length === 5, 'every message to settle', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(acked).toEqual([0, 2, 4])
    expect(nacked).toEqual([1, 3])
    expect({ failed, dead }).toEqual({ failed: 4, dead: 2 })
    expect(report).toMatchObject({ pushed: 5, completed: 3, deadLettered: 2, unprocessed: [] })
  })

  // Defect: a throwing 'threads' listener made resize() reject after the lanes were added,
  // and skipped the flush of waiting pushes.
  it("'threads' (resize)", async () => {
    const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 1 })
    queue.on('error', () => {})
    await queue.start()
    let heard = 0
    queue.on('threads', () => {
      heard++
      throw new Error('threads listener exploded')
    })
    await within(queue.resize(2), 'resize(2)')
    expect(queue.stats().threads).toBe(2)
    expect(heard).toBe(1)
    let acked = 0
    for (let id = 0; id < 200; id++) await queue.push({ id }, { ack: () => acked++ })
    await waitFor(() => acked === 200, 'every ack', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(report).toMatchObject({ pushed: 200, completed: 200, unprocessed: [] })
  })

  // Defect: 'pause'/'resume' for the backlog are emitted from inside push() and the lane
  // watcher: a throwing listener rejected pushes that had been accepted (or stopped the
  // watcher).
  it("'pause' and 'resume' (backlog)", async () => {
    const { queue, journal, open } = await gatedQueue()
    queue.on('error', () => {})
    let pauses = 0
    let resumes = 0
    queue.on('pause', () => {
      pauses++
      throw new Error('pause listener exploded')
    })
    queue.on('resume', () => {
      resumes++
      throw new Error('resume listener exploded')
    })
    const acks = new Array(200).fill(0)
    const outcomes = pushUntilOneWaits(queue, acks)
    // A few more wait behind it.
    const first = outcomes.length
    for (let id = first; id < first + 5; id++) {
      outcomes.push(
        queue.push(msg(id), { ack: () => acks[id]++ }).then(
          () => 'ok',
          (err: Error & { code?: string }) => err.code ?? String(err),
        ),
      )
    }
    const n = outcomes.length
    open()
    expect(await within(Promise.all(outcomes), 'every push to settle')).toEqual(Array(n).fill('ok'))
    await waitFor(() => acks.slice(0, n).every((a) => a >= 1), 'every ack', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(acks.slice(0, n)).toEqual(Array(n).fill(1))
    expect(journaled(journal)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(pauses).toBeGreaterThanOrEqual(1)
    expect(resumes).toBeGreaterThanOrEqual(1)
    expect(report).toMatchObject({ pushed: n, completed: n, unprocessed: [] })
  })

  // Defect: an 'error' listener that throws (here for an ack that threw) unwound the lane's
  // drain and the watcher, ending in an unhandled rejection; its error must become a
  // process warning named ConveyorWarning instead.
  it("'error' becomes a ConveyorWarning", async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 1 })
      let errorsHeard = 0
      queue.on('error', () => {
        errorsHeard++
        throw new Error('error listener exploded')
      })
      await queue.start()
      let acked = 0
      for (let id = 0; id < 100; id++) {
        await queue.push(
          { id },
          {
            ack: () => {
              acked++
              if (id === 10) throw new Error('ack exploded')
            },
          },
        )
      }
      await waitFor(() => acked === 100, 'every ack', 20_000)
      const report = await within(queue.stop(), 'stop()')
      await waitFor(
        () => warnings.some((w) => w.name === 'ConveyorWarning'),
        'a ConveyorWarning',
        5000,
      )
      expect(errorsHeard).toBe(1)
      expect(acked).toBe(100)
      expect(report).toMatchObject({ pushed: 100, completed: 100, unprocessed: [] })
    } finally {
      process.off('warning', onWarning)
    }
  })
})
