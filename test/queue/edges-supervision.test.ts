import { describe, expect, it } from 'vitest'
import { within } from './edges-helpers.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('a replacement worker whose setup() throws', () => {
  // Defect: a replacement's setup() that throws ended the lane for good (one HANDLER_INVALID
  // 'error', no restart): every message behind the crash, and every later push, hung.
  it('restarts the lane with backoff, one SETUP_FAILED per failure, and every message is acked', async () => {
    const flags = new SharedArrayBuffer(8)
    const queue = makeQueue({
      handler: fixture('edge-setup-throws.mjs'),
      threads: 1,
      retry: { attempts: 2, backoffMs: 1 },
      workerData: { flags, setupFailures: 3 },
    })
    const errors: (Error & { code?: string })[] = []
    const dead: unknown[] = []
    queue.on('error', (e) => errors.push(e))
    queue.on('dead-letter', ({ message }) => dead.push(message))
    await queue.start()
    const acked: string[] = []
    const push = (m: string) => queue.push(m, { ack: () => acked.push(m) })
    for (const m of ['a', 'crash-once', 'b']) await within(push(m), `push ${m}`)
    const view = new Int32Array(flags)
    // Later pushes, while replacements keep failing their setup.
    await waitFor(() => view[1] >= 1, 'a replacement setup() to throw', 20_000)
    for (const m of ['c', 'd']) await within(push(m), `push ${m}`)
    await waitFor(() => acked.length === 5, `every message to be acked (${acked})`, 20_000)
    expect(view[1]).toBe(3)
    // With attempts 2, blaming the suspect for failed setups would have dead-lettered it.
    expect(dead).toEqual([])
    expect(acked).toEqual(['a', 'crash-once', 'b', 'c', 'd'])
    expect(errors.map((e) => e.code)).toEqual(['SETUP_FAILED', 'SETUP_FAILED', 'SETUP_FAILED'])
    const report = await within(queue.stop(), 'stop()')
    expect(report).toMatchObject({ pushed: 5, completed: 5, deadLettered: 0, unprocessed: [] })
  })
})

describe('teardown() that throws', () => {
  // Defect: the throw rejected the lane task, which read as a crash: the lane was restarted
  // on a fresh worker (setup again), whose teardown threw again, until stop()'s timeout.
  it('stop() drains, one TEARDOWN_FAILED per worker, setup and teardown once per worker', async () => {
    const life = new SharedArrayBuffer(8)
    const threads = 2
    const queue = makeQueue({
      handler: fixture('edge-teardown-throws.mjs'),
      threads,
      workerData: { life },
    })
    const errors: (Error & { code?: string })[] = []
    queue.on('error', (e) => errors.push(e))
    await queue.start()
    const acks = new Array(100).fill(0)
    for (let id = 0; id < 100; id++) await queue.push({ id }, { ack: () => acks[id]++ })
    const report = await within(queue.stop({ timeoutMs: 5000 }), 'stop()')
    expect(report).toMatchObject({ pushed: 100, completed: 100, drained: true, unprocessed: [] })
    expect(acks).toEqual(Array(100).fill(1))
    expect(errors.filter((e) => e.code === 'TEARDOWN_FAILED')).toHaveLength(threads)
    const [setups, teardowns] = new Int32Array(life)
    expect({ setups, teardowns }).toEqual({ setups: threads, teardowns: threads })
  })
})

describe('a setup() that never resolves', () => {
  // Defect: start() waited for it forever (no startTimeoutMs).
  it('start() rejects with START_TIMEOUT after startTimeoutMs', async () => {
    const queue = makeQueue({
      handler: fixture('edge-setup-hangs.mjs'),
      threads: 1,
      startTimeoutMs: 500,
    } as never)
    const err = await rejection(within(queue.start(), 'start()'))
    expect(err.code, String(err)).toBe('START_TIMEOUT')
  })

  // Defect: stop() during start() rejected with QUEUE_NOT_STARTED and left the start (and
  // its workers) hanging.
  it('stop() during start() resolves with a report; start() rejects with QUEUE_STOPPED', async () => {
    const started = new SharedArrayBuffer(4)
    const queue = makeQueue({
      handler: fixture('edge-setup-hangs.mjs'),
      threads: 1,
      workerData: { started },
    })
    const starting = queue.start().then(
      () => 'resolved',
      (err: Error & { code?: string }) => err.code ?? String(err),
    )
    await waitFor(() => Atomics.load(new Int32Array(started), 0) >= 1, 'setup() to begin', 20_000)
    const report = await within(queue.stop(), 'stop() during start()')
    expect(report).toMatchObject({ pushed: 0, unprocessed: [] })
    expect(await within(starting, 'start() to settle')).toBe('QUEUE_STOPPED')
  })
})
