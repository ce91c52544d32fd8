import { describe, expect, it } from 'vitest'
import { runProducers } from '../../dist/src/index.js'
import { makeBoundedQueue, runNode, stopBoundedQueuesAfterEach, within } from './edges-helpers.js'
import { fixture, makeQueue, rejection, sleep, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()
stopBoundedQueuesAfterEach()

const echo = fixture('echo.mjs')

describe('stop() while resize() is in flight', () => {
  // Defect: the lane added by a resize still waiting for its worker's setup was started after
  // stop() had closed the others, and was never closed itself: stop() waited out its timeout
  // and reported drained: false. ('at once': stop() in the same tick, before the resize began.)
  it.each([
    ['at once', false],
    ['once the new worker is in setup()', true],
  ])(
    'growing, stop() %s: drains, every message is accounted for, resize() settles',
    async (_when, inSetup) => {
      const started = new SharedArrayBuffer(4)
      const queue = makeQueue({
        handler: fixture('edge-slow-setup.mjs'),
        threads: 1,
        workerData: { started, setupMs: 300 },
      })
      await queue.start()
      const acks = new Array(200).fill(0)
      for (let id = 0; id < 200; id++) await queue.push({ id }, { ack: () => acks[id]++ })
      const resizing = queue.resize(2).then(
        () => 'resolved',
        (err: Error & { code?: string }) => err.code ?? String(err),
      )
      if (inSetup) {
        await waitFor(
          () => Atomics.load(new Int32Array(started), 0) === 2,
          'the new worker',
          20_000,
        )
      }
      const report = await within(queue.stop({ timeoutMs: 5000 }), 'stop()')
      expect(['resolved', 'QUEUE_STOPPED']).toContain(await within(resizing, 'resize(2)'))
      expect(report.drained).toBe(true)
      const unprocessed = (report.unprocessed as { id: number }[]).map((m) => m.id)
      // Each message has exactly one outcome: acked once, or returned by stop().
      for (const id of unprocessed) acks[id]++
      expect(acks).toEqual(Array(200).fill(1))
      expect(report.pushed).toBe(200)
      expect(report.completed + unprocessed.length).toBe(200)
    },
  )

  // Defect: shrinking waited for the removed lane to drain, and stop() waited for the
  // resize first: with a handler that never finishes, stop() never returned (its timeout
  // did not apply to the removed lane). ('at once': stop() in the same tick, before the
  // resize began; otherwise the resize is under way, waiting for the hung lane.)
  it.each([
    ['at once', 0],
    ['while the resize waits for the hung lane', 50],
  ])(
    'shrinking onto a hung handler, stop() %s: returns, every message accounted for',
    async (_when, delayMs) => {
      const flags = new SharedArrayBuffer(8)
      const queue = makeBoundedQueue({
        handler: fixture('edge-journal.mjs'),
        threads: 2,
        ordering: 'none',
        workerData: { flags },
      })
      queue.on('error', () => {})
      await queue.start()
      const view = new Int32Array(flags)
      const acked: number[] = []
      let id = 0
      // 'hang' messages until the handler hangs in both lanes.
      while (Atomics.load(view, 1) !== 0b11 && id < 200) {
        const m = { id: id++, hang: true }
        await queue.push(m, { ack: () => acked.push(m.id) })
        await sleep(1)
      }
      await waitFor(() => Atomics.load(view, 1) === 0b11, 'both lanes to hang', 20_000)
      for (let i = 0; i < 10; i++) {
        const m = { id: id++ }
        await queue.push(m, { ack: () => acked.push(m.id) })
      }
      expect(queue.stats().lanes.every((lane) => lane.inFlight > 0)).toBe(true)
      const resizing = queue.resize(1).then(
        () => 'resolved',
        (err: Error & { code?: string }) => err.code ?? String(err),
      )
      if (delayMs > 0) await sleep(delayMs)
      const report = await within(queue.stop({ timeoutMs: 500 }), 'stop({ timeoutMs: 500 })')
      await within(resizing, 'resize(1) to settle')
      const unprocessed = (report.unprocessed as { id: number }[]).map((m) => m.id)
      const all = [...acked, ...unprocessed].sort((a, b) => a - b)
      expect(all).toEqual(Array.from({ length: id }, (_, i) => i))
      expect(report.pushed).toBe(id)
      expect(report.completed + unprocessed.length).toBe(id)
    },
  )
})

describe('consume() of a source whose next() never resolves', () => {
  // Defect: consume() awaited the source's next() forever, even after stop().
  it('resolves after stop() and calls the source return()', async () => {
    const queue = makeQueue({ handler: echo, threads: 1 })
    await queue.start()
    let returned = 0
    let served = 0
    const source: AsyncIterable<unknown> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          served < 3
            ? Promise.resolve({ done: false, value: { id: served++ } })
            : new Promise<IteratorResult<unknown>>(() => {}),
        return: async () => {
          returned++
          return { done: true, value: undefined }
        },
      }),
    }
    const consuming = queue.consume(source)
    await waitFor(() => served === 3 && queue.stats().pushed === 3, 'the three items', 20_000)
    const report = await within(queue.stop(), 'stop()')
    const result = await within(consuming, 'consume() after stop()')
    expect(result).toEqual({ consumed: 3, refused: [] })
    expect(returned).toBeGreaterThanOrEqual(1)
    expect(report.pushed).toBe(3)
    expect(report.completed + report.unprocessed.length).toBe(3)
  })
})

/** Runs a scenario of edge-yield-main.mjs in a child process; its JSON line, or a failure. */
async function scenario(name: string): Promise<Record<string, number | boolean>> {
  const { code, killed, stdout, stderr } = await runNode(fixture('edge-yield-main.mjs'), [name])
  if (killed) throw new Error(`scenario ${name}: no answer in 20 s (event loop starved?)`)
  expect(code, `scenario ${name} exited with ${code}: ${stderr.slice(0, 2000)}`).toBe(0)
  const line = stdout.trim().split('\n').at(-1) ?? ''
  return JSON.parse(line)
}

describe('producer loops yield to the event loop', () => {
  // Defect: runProducers on a queue paused beforehand awaited an already-resolved promise:
  // a microtask loop that starved timers (and the whole process) until resume() — which
  // then could never be called.
  it('runProducers on a paused queue waits without spinning, then flows after resume()', async () => {
    const out = await scenario('paused-producers')
    expect(out.timerFired).toBe(true)
    expect(out.callsWhilePaused).toBe(0)
    expect(out.callsWhenTimerFired).toBe(0)
    expect(out.produced).toBe(100)
    expect(out).toMatchObject({ made: 100, pushed: 100, completed: 100, unprocessed: 0 })
  })

  // Defect: an awaited push() that finds room resolves at once, so a producer loop never
  // gave timers (or I/O) a turn until the lanes filled.
  it('an awaited push loop lets a timer fire before it ends', async () => {
    const queue = makeQueue({ handler: echo, threads: 1 })
    await queue.start()
    const N = 300_000
    let firedAt = -1
    let i = 0
    const timer = setTimeout(() => {
      firedAt = i
    }, 10)
    for (i = 0; i < N; i++) await queue.push(i)
    clearTimeout(timer)
    expect(firedAt, 'the timer fired while the loop ran').toBeGreaterThanOrEqual(0)
    expect(firedAt).toBeLessThan(N)
    await waitFor(() => queue.stats().completed >= N, 'every message to complete', 20_000)
    const report = await within(queue.stop(), 'stop()')
    expect(report).toMatchObject({ pushed: N, completed: N, unprocessed: [] })
  })

  // Defect: a producer that always has a message starved AbortSignal.timeout(50): runProducers
  // never returned.
  it('runProducers with an always-ready producer ends on AbortSignal.timeout(50)', async () => {
    const out = await scenario('producers-abort')
    expect(out.produced).toBe(out.pushed)
    expect(out.made).toBeGreaterThanOrEqual(out.produced as number)
    expect((out.completed as number) + (out.unprocessed as number)).toBe(out.pushed)
    expect(out.deadLettered).toBe(0)
  })

  // Defect: consume() of an endless sync generator starved the timer that would stop it.
  it('consume() of an endless sync generator ends when a timer stops the queue', async () => {
    const out = await scenario('consume-stop')
    expect(out.consumed).toBe(out.pushed)
    expect((out.consumed as number) + (out.refused as number)).toBe(out.pulled)
    expect((out.completed as number) + (out.unprocessed as number)).toBe(out.pushed)
  })
})

describe('runProducers when one producer throws', () => {
  // Defect: runProducers rejected with the error but left the other producer loops running
  // (pushing) until the queue stopped.
  it('rejects with that error and stops calling the other producers', async () => {
    const queue = makeQueue({ handler: echo, threads: 1 })
    await queue.start()
    const boom = new Error('produce exploded')
    const calls = [0, 0, 0]
    const made = [0, 0, 0]
    let refused = 0
    let next = 0
    const running = runProducers(
      queue,
      () => {
        const p = next++
        return {
          produce() {
            calls[p]++
            if (p === 0 && calls[p] > 3) throw boom
            // The others have a message every other call: their loops sleep (idleMs) in
            // between, so this test does not depend on the loops yielding by themselves.
            if (p !== 0 && calls[p] % 2 === 0) return undefined
            made[p]++
            return { p, n: made[p] }
          },
          refused: () => {
            refused++
          },
        }
      },
      { producers: 3, idleMs: 1 },
    )
    expect(await rejection(within(running, 'runProducers'))).toBe(boom)
    const after = [...calls]
    await sleep(100)
    expect(calls).toEqual(after)
    const report = await within(queue.stop(), 'stop()')
    const total = made.reduce((a, b) => a + b, 0)
    expect(report.pushed + refused).toBe(total)
    expect(report.completed + report.unprocessed.length).toBe(report.pushed)
  })
})
