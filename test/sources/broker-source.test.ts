import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { ConveyorError, createQueue, type Queue } from '../../dist/src/index.js'
import { ENVELOPES, type Envelope } from '../../dist/src/queue/consume.js'
import {
  BrokerSource,
  resolveSourceOptions,
  SOURCE_OPTION_KEYS,
  type SourceOptions,
} from '../../dist/src/sources/index.js'
import { FakeBroker, Refusal } from './support/fake-broker.js'
import { rejection } from './support/refused.js'

/*
 * The shared base of every broker source (src/sources/broker-source.ts), over an in-memory
 * broker (support/fake-broker.ts) that records every call and every breach of the contract:
 * first one rule at a time, driving the source's iterator by hand; then a model-based test that
 * runs random commands against a real queue (worker threads) consuming the source.
 */

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const handler = fileURLToPath(new URL('./fixtures/broker-model-handler.mjs', import.meta.url))

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000) {
  const until = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

interface Heard {
  disconnect: { error: Error; attempt: number; retryInMs: number }[]
  reconnect: { attempts: number }[]
  dead: { value: unknown; error: Error; deliveries: number; id: string }[]
  errors: Error[]
}

const sources: BrokerSource<unknown, number>[] = []
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()))
})

function makeSource(fake: FakeBroker, options: SourceOptions = {}) {
  const { shared } = resolveSourceOptions(
    'test',
    { ackIntervalMs: 1, reconnect: { backoffMs: 1, maxBackoffMs: 8 }, ...options },
    SOURCE_OPTION_KEYS,
  )
  const source = new BrokerSource<unknown, number>(fake, shared)
  sources.push(source)
  fake.inFlight = () => source.inFlight
  fake.maxInFlight = shared.maxInFlight
  const heard: Heard = { disconnect: [], reconnect: [], dead: [], errors: [] }
  source.on('disconnect', (info) => heard.disconnect.push(info))
  source.on('reconnect', (info) => heard.reconnect.push(info))
  source.on('dead-letter', (letter) => heard.dead.push(letter))
  source.on('error', (error) => heard.errors.push(error))
  return { source, heard, it: source[Symbol.asyncIterator]() }
}

async function next(it: AsyncIterator<Envelope<unknown>>): Promise<Envelope<unknown>> {
  const result = await it.next()
  if (result.done) throw new Error('the source ended')
  return result.value
}

/** Whether the promise settles within `ms` (it is left running either way). */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([promise.then(() => true), sleep(ms).then(() => false)])
}

describe('BrokerSource, one rule at a time', { timeout: 15_000 }, () => {
  it('fetches only what is left of maxInFlight, and nothing while it is used up', async () => {
    const fake = new FakeBroker()
    fake.add(...Array.from({ length: 10 }, (_, i) => ({ id: i, payload: json({ id: i }) })))
    const { source, it } = makeSource(fake, { maxInFlight: 4 })
    const envelopes = [await next(it), await next(it), await next(it), await next(it)]
    expect(envelopes.map((e) => e.value)).toEqual([{ id: 0 }, { id: 1 }, { id: 2 }, { id: 3 }])
    const fifth = it.next()
    expect(await settlesWithin(fifth, 50)).toBe(false)
    expect(fake.fetches.map((f) => f.max)).toEqual([4])
    expect(source.inFlight).toBe(4)
    envelopes[1].ack?.()
    expect((await fifth).value).toMatchObject({ value: { id: 4 } })
    expect(fake.fetches.map((f) => [f.max, f.count])).toEqual([
      [4, 4],
      [1, 1],
    ])
    expect(fake.breaches).toEqual([])
  })

  it('acks only what the queue acked, batched by ackIntervalMs and ackBatch', async () => {
    const fake = new FakeBroker()
    fake.add(...Array.from({ length: 10 }, (_, i) => ({ id: i, payload: json({ id: i }) })))
    const { it } = makeSource(fake, { maxInFlight: 10, ackBatch: 4, ackIntervalMs: 20 })
    const envelopes: Envelope<unknown>[] = []
    for (let i = 0; i < 10; i++) envelopes.push(await next(it))
    await sleep(40)
    expect(fake.ackCalls).toEqual([])
    envelopes[0].ack?.()
    envelopes[1].ack?.()
    await sleep(5)
    expect(fake.ackCalls).toEqual([]) // waits for the interval, to batch
    await waitFor(() => fake.ackCalls.length === 1, 'the first batch')
    expect(fake.ackCalls[0].seqs).toEqual([1, 2])
    // A full batch goes at once; what arrives while it is on its way follows in the next one.
    for (const e of envelopes.slice(2)) e.ack?.()
    await waitFor(() => fake.acks.size === 10, 'every ack')
    expect(fake.ackCalls.slice(1).map((c) => c.seqs)).toEqual([
      [3, 4, 5, 6],
      [7, 8, 9, 10],
    ])
    envelopes[3].ack?.() // twice: nothing more
    await sleep(30)
    expect(fake.ackCalls).toHaveLength(3)
    expect(fake.breaches).toEqual([])
  })

  it('retries a failed message below maxDeliveries and dead-letters it at maxDeliveries', async () => {
    const fake = new FakeBroker()
    fake.add({ id: 7, payload: json({ id: 7 }) })
    const { heard, it } = makeSource(fake, { maxDeliveries: 3 })
    const errors = [new Error('one'), new Error('two'), new Error('three')]
    for (const error of errors) (await next(it)).nack?.(error)
    await waitFor(() => fake.dead.length === 1, 'the dead letter')
    expect(fake.retried.map((r) => [r.deliveries, r.error.message])).toEqual([
      [1, 'one'],
      [2, 'two'],
    ])
    expect(fake.dead).toEqual([{ id: 7, error: errors[2], deliveries: 3 }])
    await waitFor(() => heard.dead.length === 1, "the 'dead-letter' event")
    expect(heard.dead).toEqual([{ value: { id: 7 }, error: errors[2], deliveries: 3, id: '7' }])
    expect(fake.breaches).toEqual([])
  })

  it('dead-letters undecodable payloads (DECODE_FAILED) and over-delivered messages (DELIVERY_LIMIT) without yielding them', async () => {
    const fake = new FakeBroker()
    fake.add(
      { id: 1, payload: Buffer.from('{not json') },
      { id: 2, payload: json({ id: 2 }), deliveries: 3 }, // its next delivery is the 4th
      { id: 3, payload: json({ id: 3 }), deliveries: 2 }, // the 3rd: still allowed
    )
    const { heard, it, source } = makeSource(fake, { maxDeliveries: 3 })
    expect((await next(it)).value).toEqual({ id: 3 })
    await waitFor(() => heard.dead.length === 2, 'two dead letters')
    expect(fake.dead.map((d) => [d.id, (d.error as ConveyorError).code, d.deliveries])).toEqual([
      [1, 'DECODE_FAILED', 1],
      [2, 'DELIVERY_LIMIT', 4],
    ])
    expect(heard.dead.map((d) => [d.id, d.value, (d.error as ConveyorError).code])).toEqual([
      ['1', undefined, 'DECODE_FAILED'],
      ['2', undefined, 'DELIVERY_LIMIT'],
    ])
    expect(source.inFlight).toBe(1)
    expect(fake.breaches).toEqual([])
  })

  it("reports a failing fetch as 'disconnect' with a growing backoff, then 'reconnect'", async () => {
    const fake = new FakeBroker()
    fake.failFetches = 4
    fake.add({ id: 1, payload: json({ id: 1 }) })
    const { heard, it } = makeSource(fake, { reconnect: { backoffMs: 8, maxBackoffMs: 20 } })
    expect((await next(it)).value).toEqual({ id: 1 })
    expect(heard.disconnect.map((d) => d.attempt)).toEqual([1, 2, 3, 4])
    // Equal jitter: each delay within [½, 1] of backoffMs doubling per attempt, capped.
    const bases = [8, 16, 20, 20]
    heard.disconnect.forEach((d, i) => {
      expect(d.retryInMs).toBeGreaterThanOrEqual(bases[i] / 2)
      expect(d.retryInMs).toBeLessThanOrEqual(bases[i])
      expect(d.error.message).toBe('fetch failed: connection refused')
    })
    expect(heard.reconnect).toEqual([{ attempts: 4 }])
    // A later failure starts again from the first attempt.
    fake.failFetches = 1
    fake.add({ id: 2, payload: json({ id: 2 }) })
    expect((await next(it)).value).toEqual({ id: 2 })
    expect(heard.disconnect.map((d) => d.attempt)).toEqual([1, 2, 3, 4, 1])
    expect(heard.reconnect).toEqual([{ attempts: 4 }, { attempts: 1 }])
  })

  it('ends its iteration on an error fatal() calls incurable (SOURCE_FAILED); a transient one before it is retried', async () => {
    const fake = new FakeBroker()
    fake.add(...Array.from({ length: 3 }, (_, i) => ({ id: i, payload: json({ id: i }) })))
    const { source, heard, it } = makeSource(fake, { ackIntervalMs: 1 })
    const [a, b, c] = [await next(it), await next(it), await next(it)]
    fake.failFetches = 2 // transient first: fatal() says undefined, so it is retried
    fake.refuse = new Refusal('NOT_FOUND - no such queue')
    const error = await rejection(it.next(), 5000)
    expect(error).toMatchObject({
      name: 'ConveyorError',
      code: 'SOURCE_FAILED',
      message:
        "the fake broker refused: NOT_FOUND - no such queue: change the fake's configuration (the source stopped: reconnecting would not change this)",
    })
    expect(error.cause).toBe(fake.refuse)
    expect(heard.disconnect.map((d) => [d.attempt, d.error.message])).toEqual([
      [1, 'fetch failed: connection refused'],
      [2, 'fetch failed: connection refused'],
    ])
    expect(fake.fetches.map((f) => f.outcome)).toEqual(['ok', 'failed', 'failed', 'failed'])
    expect(await it.next()).toEqual({ done: true, value: undefined })
    // What was fetched still settles: an ack is sent, a failure handed back.
    a.ack?.()
    b.nack?.(new Error('failed'))
    await waitFor(() => fake.acks.size === 1 && fake.retried.length === 1, 'the ack and the retry')
    expect(fake.acks.get(0)).toBe(1)
    expect(fake.retried.map((r) => r.id)).toEqual([1])
    // close() gives back what never finished.
    await source.close()
    expect(fake.closeCalls.map((call) => call.map((d) => d.id))).toEqual([['2']])
    void c
    expect(heard.reconnect).toEqual([])
    expect(heard.errors).toEqual([])
    expect(fake.fetches).toHaveLength(4) // nothing fetched after the refusal
    expect(fake.breaches).toEqual([])
  })

  it('a real queue: consume() rejects with the refusal; what is in the lanes still finishes and is acked', async () => {
    const fake = new FakeBroker()
    const ids = [0, 1, 2, 3]
    fake.add(...ids.map((id) => ({ id, payload: json({ id, slowMs: 100 }) })))
    fake.refuse = new Refusal('access refused')
    const returned = new SharedArrayBuffer(64)
    const returnedOf = new Int32Array(returned)
    fake.checkAck = (id) =>
      Atomics.load(returnedOf, id) === 0
        ? `message ${id} acked before its handler returned`
        : undefined
    const { source, heard } = makeSource(fake, { maxInFlight: 8 })
    const queue = createQueue({
      handler,
      threads: 2,
      workerData: { calls: new SharedArrayBuffer(64), threw: new SharedArrayBuffer(64), returned },
    })
    await queue.start()
    try {
      const error = await rejection(queue.consume(source), 20_000)
      expect(error).toMatchObject({ code: 'SOURCE_FAILED', message: /access refused/ })
      expect(error.cause).toBe(fake.refuse)
      await waitFor(() => fake.acks.size === 4, 'the four acks', 20_000)
      expect(heard.disconnect).toEqual([])
      await queue.stop({ timeoutMs: 1000 })
      await source.close()
      expect(fake.closeCalls).toEqual([[]])
      expect(fake.breaches).toEqual([])
    } finally {
      await queue.stop({ timeoutMs: 1000 }).catch(() => undefined)
    }
  })

  it('retries a batch of acks that failed, and acks each message once', async () => {
    const fake = new FakeBroker()
    fake.failAcks = 2
    fake.add({ id: 1, payload: json({ id: 1 }) }, { id: 2, payload: json({ id: 2 }) })
    const { heard, it } = makeSource(fake)
    const [a, b] = [await next(it), await next(it)]
    a.ack?.()
    b.ack?.()
    await waitFor(() => fake.acks.size === 2, 'both acks')
    expect(fake.ackCalls).toEqual([
      { seqs: [1, 2], failed: true },
      { seqs: [1, 2], failed: true },
      { seqs: [1, 2], failed: false },
    ])
    expect(heard.errors.map((e) => [(e as ConveyorError).code, e.message])).toEqual([
      [
        'SOURCE_FAILED',
        expect.stringMatching(/acknowledging 2 finished messages failed \(attempt 1/),
      ],
      ['SOURCE_FAILED', expect.stringMatching(/\(attempt 2, retrying\)/)],
    ])
    expect(fake.breaches).toEqual([])
  })

  it('close() sends the acks still waiting, gives back the unfinished, and acks nothing twice', async () => {
    const fake = new FakeBroker()
    fake.add(...Array.from({ length: 4 }, (_, i) => ({ id: i, payload: json({ id: i }) })))
    const { source, heard, it } = makeSource(fake, { ackIntervalMs: 60_000 })
    const envelopes = [await next(it), await next(it), await next(it), await next(it)]
    envelopes[0].ack?.()
    envelopes[2].ack?.()
    envelopes[3].nack?.(new Error('failed'))
    expect(fake.ackCalls).toEqual([]) // held for the (long) interval
    await source.close()
    expect(fake.ackCalls).toEqual([{ seqs: [1, 3], failed: false }])
    expect(fake.closeCalls.map((c) => c.map((d) => d.handle))).toEqual([[2]])
    expect(fake.retried.map((r) => r.id)).toEqual([3])
    // A message that finishes after close() is not acked: it was given back.
    envelopes[1].ack?.()
    envelopes[0].ack?.()
    await sleep(20)
    expect(fake.ackCalls).toHaveLength(1)
    expect(heard.errors.map((e) => (e as ConveyorError).code)).toEqual(['SOURCE_CLOSED'])
    expect(await it.next()).toEqual({ done: true, value: undefined })
    await source.close() // again: nothing more
    expect(fake.closeCalls).toHaveLength(1)
    expect(fake.breaches).toEqual([])
  })

  it('gives back a message that finishes while close() is flushing acks: never acked, never lost', async () => {
    const fake = new FakeBroker()
    fake.add({ id: 1, payload: json({ id: 1 }) }, { id: 2, payload: json({ id: 2 }) })
    const { source, heard, it } = makeSource(fake, { ackIntervalMs: 60_000 })
    const [a, b] = [await next(it), await next(it)]
    let open!: () => void
    fake.ackGate = new Promise((resolve) => {
      open = resolve
    })
    a.ack?.()
    const closing = source.close()
    await waitFor(() => fake.ackCalls.length === 1, 'the flush')
    b.ack?.() // close() has begun: too late to ack it
    open()
    await closing
    expect(fake.ackCalls.map((c) => c.seqs)).toEqual([[1]])
    expect(fake.closeCalls.map((c) => c.map((d) => d.handle))).toEqual([[2]])
    expect(heard.errors.map((e) => (e as ConveyorError).code)).toEqual(['SOURCE_CLOSED'])
    expect(fake.breaches).toEqual([])
  })

  it('leaves a message a stopping queue refused (QUEUE_STOPPED) for close() to give back, never retried', async () => {
    const fake = new FakeBroker()
    fake.add({ id: 1, payload: json({ id: 1 }) })
    const { source, it } = makeSource(fake)
    const e = await next(it)
    e.nack?.(new ConveyorError('QUEUE_STOPPED', 'the queue is stopping'))
    await sleep(10)
    expect(fake.retried).toEqual([])
    expect(source.inFlight).toBe(1)
    await source.close()
    expect(fake.closeCalls.map((c) => c.map((d) => d.id))).toEqual([['1']])
    expect(fake.ready.map((m) => m.id)).toEqual([1])
    expect(fake.breaches).toEqual([])
  })

  it('close() ends within closeTimeoutMs when a fetch never answers and an ack hangs', async () => {
    const fake = new FakeBroker()
    fake.add({ id: 1, payload: json({ id: 1 }) })
    const { source, heard, it } = makeSource(fake, { closeTimeoutMs: 100 })
    const e = await next(it)
    fake.hangFetches = true
    const pending = it.next() // waits on a fetch that never answers
    fake.ackGate = new Promise(() => {})
    e.ack?.()
    await waitFor(() => fake.ackCalls.length === 1, 'the ack on its way')
    expect(await settlesWithin(source.close(), 5000)).toBe(true)
    expect(heard.errors.map((err) => err.message)).toEqual([
      expect.stringMatching(/close\(\): 1 finished messages could not be acknowledged in time/),
    ])
    expect(fake.closeCalls).toEqual([[]])
    void pending
  })

  it('a real queue stops and its source closes while a fetch never answers', async () => {
    const fake = new FakeBroker()
    fake.hangFetches = true
    const { source } = makeSource(fake, { closeTimeoutMs: 100 })
    const queue = createQueue({
      handler,
      threads: 1,
      workerData: {
        calls: new SharedArrayBuffer(64),
        threw: new SharedArrayBuffer(64),
        returned: new SharedArrayBuffer(64),
      },
    })
    await queue.start()
    const consuming = queue.consume(source)
    await sleep(20)
    const done = (async () => {
      await queue.stop({ timeoutMs: 1000 })
      await source.close()
      return consuming
    })()
    expect(await settlesWithin(done, 10_000)).toBe(true)
    expect(await done).toEqual({ consumed: 0, refused: [] })
  })

  it('fences listeners that throw: each throw goes to error, and the source goes on', async () => {
    const fake = new FakeBroker()
    fake.failFetches = 1
    fake.add({ id: 1, payload: Buffer.from('nope') }, { id: 2, payload: json({ id: 2 }) })
    const { source, heard, it } = makeSource(fake)
    for (const event of ['disconnect', 'reconnect', 'dead-letter'] as const) {
      source.on(event, () => {
        throw new Error(`${event} listener threw`)
      })
    }
    const second = await next(it)
    expect(second.value).toEqual({ id: 2 })
    await waitFor(() => heard.errors.length === 3, 'three fenced throws')
    expect(heard.errors.map((e) => e.message).sort()).toEqual([
      'dead-letter listener threw',
      'disconnect listener threw',
      'reconnect listener threw',
    ])
    expect([heard.disconnect.length, heard.reconnect.length, heard.dead.length]).toEqual([1, 1, 1])
    // An error listener that throws, and errors without a listener: process warnings.
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.message)
    process.on('warning', onWarning)
    try {
      source.removeAllListeners('error')
      source.on('error', () => {
        throw new Error('error listener threw')
      })
      fake.failAcks = 1
      second.ack?.() // fails once: SOURCE_FAILED goes to the throwing error listener
      await waitFor(() => fake.acks.size === 1, 'the ack, retried')
      await waitFor(() => warnings.length > 0, 'a process warning')
      expect(warnings.join('\n')).toMatch(/error listener threw/)
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('extends the leases of unsettled deliveries only, every leaseMs', async () => {
    const fake = new FakeBroker({ leaseMs: 5 })
    fake.add(...Array.from({ length: 3 }, (_, i) => ({ id: i, payload: json({ id: i }) })))
    const { source, it } = makeSource(fake)
    const envelopes = [await next(it), await next(it), await next(it)]
    await waitFor(() => fake.extended.length >= 2, 'two extensions')
    expect(fake.extended.at(-1)).toEqual([1, 2, 3])
    envelopes[1].ack?.()
    await waitFor(() => fake.acks.size === 1, 'the ack')
    const before = fake.extended.length
    await waitFor(() => fake.extended.length >= before + 2, 'more extensions')
    expect(fake.extended.at(-1)).toEqual([1, 3])
    await source.close()
    const after = fake.extended.length
    await sleep(20)
    expect(fake.extended).toHaveLength(after)
    expect(fake.breaches).toEqual([])
  })
})

/*
 * Model-based: a real queue (2 worker threads, small lanes, one handler attempt) consumes a
 * BrokerSource over the fake broker while fast-check runs random commands — deliver a batch of
 * messages (each with its plan: the handler throws on its first `fail` calls, maybe slowly; or
 * an undecodable payload; or one already delivered maxDeliveries times), fail the next fetch,
 * fail the next ack, wait — then, in half the runs, waits until every message ended (else, in
 * half of the others, delivers slow messages that fill the lanes, so that the stopping queue
 * refuses pushes: QUEUE_STOPPED), and always stops the queue and closes the source. The model is each message's plan; what the fake broker
 * and the handler's shared counters recorded must agree with it:
 *  - the fake saw no breach: no fetch past the credit (inFlight + max ≤ maxInFlight, max ≥ 1),
 *    no delivery settled twice, no message acked twice, no ack of a message whose handler had
 *    not returned (checked at the ack), inFlight ≤ maxInFlight at every call;
 *  - after close(): every delivery handed out ended exactly once (acked, retried, dead-lettered
 *    or given back by close()); a message's handler returned exactly as often as it was acked
 *    (0 or 1): what finished was acked, what was given back never finished;
 *  - a run plan retried (basic redelivery) after each throw below maxDeliveries, dead-lettered
 *    with the handler's error at delivery maxDeliveries; undecodable: DECODE_FAILED, over the
 *    limit: DELIVERY_LIMIT, neither ever handled; 'dead-letter' events match the dead letters;
 *    with the wait, every message ended as its plan says (acked or dead-lettered);
 *  - every failed fetch is a 'disconnect' whose attempt counts the failures in a row (its delay
 *    within the backoff's bounds), every run of failures ended by a fetch is one 'reconnect'
 *    with that count; every failed ack call is a SOURCE_FAILED error and its batch is acked
 *    later; listeners that throw (half the runs) are each reported on 'error'.
 */
type Plan =
  | { kind: 'run'; fail: number; slowMs: number; pad: number }
  | { kind: 'undecodable' }
  | { kind: 'over-limit' }

const MAX_DELIVERIES = 3
const MAX_IDS = 512

interface Real {
  fake: FakeBroker
  source: BrokerSource<unknown, number>
  plans: Map<number, Plan>
  maxInFlight: number
}

function invariants(real: Real) {
  expect(real.fake.breaches).toEqual([])
  expect(real.source.inFlight).toBeLessThanOrEqual(real.maxInFlight)
}

class Deliver implements fc.AsyncCommand<object, Real> {
  constructor(readonly batch: Plan[]) {}
  check = () => true
  async run(_: object, real: Real) {
    for (const plan of this.batch) {
      const id = real.plans.size + 1
      if (id >= MAX_IDS) break
      real.plans.set(id, plan)
      if (plan.kind === 'undecodable') real.fake.add({ id, payload: Buffer.from(`{${id}`) })
      else if (plan.kind === 'over-limit') {
        real.fake.add({ id, payload: json({ id, fail: 0 }), deliveries: MAX_DELIVERIES })
      } else {
        const { fail, slowMs, pad } = plan
        real.fake.add({ id, payload: json({ id, fail, slowMs, pad: 'x'.repeat(pad) }) })
      }
    }
    await sleep(0)
    invariants(real)
  }
  toString = () =>
    `deliver(${this.batch.map((p) => (p.kind === 'run' ? `${p.fail}${p.slowMs ? `/${p.slowMs}ms` : ''}` : p.kind)).join(' ')})`
}

class FailFetch implements fc.AsyncCommand<object, Real> {
  check = () => true
  async run(_: object, real: Real) {
    real.fake.failFetches++
    await sleep(1)
    invariants(real)
  }
  toString = () => 'failFetch'
}

class FailAck implements fc.AsyncCommand<object, Real> {
  check = () => true
  async run(_: object, real: Real) {
    // One failure at a time: close() retries a failed batch once, so it always flushes.
    if (real.fake.failAcks === 0) real.fake.failAcks = 1
    await sleep(1)
    invariants(real)
  }
  toString = () => 'failAck'
}

class Wait implements fc.AsyncCommand<object, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(_: object, real: Real) {
    await sleep(this.ms)
    invariants(real)
  }
  toString = () => `wait(${this.ms})`
}

const planArb: fc.Arbitrary<Plan> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('run' as const),
      fail: fc.constantFrom(0, 0, 0, 1, 2, 3, 9),
      slowMs: fc.constantFrom(0, 0, 0, 1, 4),
      pad: fc.integer({ min: 0, max: 1200 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'undecodable' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'over-limit' as const }) },
)

const commandsArb = fc.commands(
  [
    fc.array(planArb, { minLength: 1, maxLength: 12 }).map((batch) => new Deliver(batch)),
    fc.constant(new FailFetch()),
    fc.constant(new FailAck()),
    fc.integer({ min: 0, max: 15 }).map((ms) => new Wait(ms)),
  ],
  { maxCommands: 25 },
)

const coverage = { runs: 0, givenBack: 0, refusedRuns: 0, dead: 0, retried: 0, failedAcks: 0 }

describe('BrokerSource, model-based, with a real queue', () => {
  let queue: Queue | undefined
  afterEach(async () => {
    await queue?.stop({ timeoutMs: 1000 }).catch(() => undefined)
  })

  it('keeps every message ending exactly once, as its plan says, whatever fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          maxInFlight: fc.constantFrom(2, 5, 16, 40),
          ackBatch: fc.constantFrom(1, 3, 256),
          ackIntervalMs: fc.constantFrom(0, 1, 5, 1000),
          drain: fc.boolean(),
          // Without the wait: stop while slow messages fill the lanes and pushes wait for room.
          stopUnderLoad: fc.boolean(),
          throwingListeners: fc.boolean(),
        }),
        commandsArb,
        async (config, commands) => {
          const calls = new SharedArrayBuffer(4 * MAX_IDS)
          const threw = new SharedArrayBuffer(4 * MAX_IDS)
          const returned = new SharedArrayBuffer(4 * MAX_IDS)
          const [callsOf, threwOf, returnedOf] = [calls, threw, returned].map(
            (b) => new Int32Array(b),
          )
          const fake = new FakeBroker({ leaseMs: 3 })
          fake.checkAck = (id) =>
            Atomics.load(returnedOf, id) === 0
              ? `message ${id} acked before its handler returned`
              : undefined
          const { source, heard } = makeSource(fake, {
            maxInFlight: config.maxInFlight,
            maxDeliveries: MAX_DELIVERIES,
            ackBatch: config.ackBatch,
            ackIntervalMs: config.ackIntervalMs,
            reconnect: { backoffMs: 1, maxBackoffMs: 4 },
          })
          let listenerThrows = 0
          if (config.throwingListeners) {
            for (const event of ['disconnect', 'reconnect', 'dead-letter'] as const) {
              source.on(event, () => {
                listenerThrows++
                throw new Error('listener threw')
              })
            }
          }
          queue = createQueue({
            handler,
            threads: 2,
            laneBytes: 4096,
            retry: { attempts: 1 },
            workerData: { calls, threw, returned },
          })
          await queue.start()
          // What consume() nacks with QUEUE_STOPPED (a stopping queue refused the push).
          let refused = 0
          const spied = {
            [ENVELOPES]: true as const,
            [Symbol.asyncIterator]() {
              const it = source[Symbol.asyncIterator]()
              return {
                async next() {
                  const result = await it.next()
                  const envelope = result.value as Envelope<unknown> | undefined
                  const nack = envelope?.nack
                  if (envelope && nack) {
                    envelope.nack = (error: Error) => {
                      if ((error as ConveyorError).code === 'QUEUE_STOPPED') refused++
                      nack(error)
                    }
                  }
                  return result
                },
                return: () => it.return(),
              }
            },
          }
          const consuming = queue.consume(spied)
          const real: Real = { fake, source, plans: new Map(), maxInFlight: config.maxInFlight }
          await fc.asyncModelRun(() => ({ model: {}, real }), commands)

          if (!config.drain && config.stopUnderLoad) {
            const load = Array.from({ length: 16 }, () => ({
              kind: 'run' as const,
              fail: 0,
              slowMs: 4,
              pad: 1500,
            }))
            await new Deliver(load).run({}, real)
            await sleep(8)
          }
          const ended = (id: number) => fake.acks.has(id) || fake.dead.some((d) => d.id === id)
          if (config.drain) {
            await waitFor(
              () => [...real.plans.keys()].every(ended),
              `every message to end (${commands})`,
              20_000,
            )
          }
          const report = await queue.stop({ timeoutMs: 10_000 })
          await source.close()
          await consuming
          invariants(real)

          // Every delivery ended exactly once; close() was called once.
          expect(fake.out.size).toBe(0)
          expect(fake.closeCalls).toHaveLength(1)
          expect(report.drained).toBe(true)
          expect(report.unprocessed).toEqual([])

          const deadById = new Map(fake.dead.map((d) => [d.id, d]))
          expect(deadById.size).toBe(fake.dead.length)
          let sumReturned = 0
          let sumThrew = 0
          for (const [id, plan] of real.plans) {
            const what = `message ${id} (${JSON.stringify(plan)}) in ${commands}`
            const acks = fake.acks.get(id) ?? 0
            const dead = deadById.get(id)
            const [c, t, r] = [callsOf[id], threwOf[id], returnedOf[id]]
            sumReturned += r
            sumThrew += t
            const retries = fake.retried.filter((x) => x.id === id)
            expect(acks + (dead ? 1 : 0), what).toBeLessThanOrEqual(1)
            // Finished ⇔ acked: nothing finished left unacked, nothing unfinished acked.
            expect(r, what).toBe(acks)
            if (plan.kind !== 'run') {
              expect(c, what).toBe(0)
              if (dead) {
                const code = plan.kind === 'undecodable' ? 'DECODE_FAILED' : 'DELIVERY_LIMIT'
                expect((dead.error as ConveyorError).code, what).toBe(code)
                expect(dead.deliveries, what).toBe(plan.kind === 'undecodable' ? 1 : 4)
              } else expect(config.drain, what).toBe(false)
              expect(retries, what).toEqual([])
              continue
            }
            expect(c, what).toBe(t + r)
            expect(t, what).toBe(Math.min(plan.fail, c))
            // Each throw was retried below maxDeliveries, or dead-lettered at it.
            expect(
              retries.map((x) => [x.deliveries, x.error.message]),
              what,
            ).toEqual(
              Array.from({ length: Math.min(t, MAX_DELIVERIES - 1) }, (_, i) => [
                i + 1,
                `message ${id} fails (call ${i + 1})`,
              ]),
            )
            if (dead) {
              expect(dead.deliveries, what).toBe(MAX_DELIVERIES)
              expect(dead.error.message, what).toBe(`message ${id} fails (call ${MAX_DELIVERIES})`)
            }
            if (config.drain) {
              if (plan.fail >= MAX_DELIVERIES) expect(dead, what).toBeDefined()
              else expect(acks, what).toBe(1)
            }
          }
          expect(report.completed).toBe(sumReturned)
          expect(report.deadLettered).toBe(sumThrew)

          // Events.
          await waitFor(() => heard.dead.length === fake.dead.length, "'dead-letter' events")
          expect(heard.dead.map((d) => [Number(d.id), d.error])).toEqual(
            fake.dead.map((d) => [d.id, d.error]),
          )
          const expectedAttempts: number[] = []
          const expectedReconnects: number[] = []
          let streak = 0
          for (const f of fake.fetches) {
            if (f.outcome === 'failed') expectedAttempts.push(++streak)
            else if (streak > 0) {
              expectedReconnects.push(streak)
              streak = 0
            }
          }
          expect(heard.disconnect.map((d) => d.attempt)).toEqual(expectedAttempts)
          for (const d of heard.disconnect) {
            const base = Math.min(4, 2 ** (d.attempt - 1))
            expect(d.retryInMs).toBeGreaterThanOrEqual(base / 2)
            expect(d.retryInMs).toBeLessThanOrEqual(base)
          }
          expect(heard.reconnect.map((r) => r.attempts)).toEqual(expectedReconnects)
          const failedAcks = fake.ackCalls.filter((c) => c.failed)
          for (const call of failedAcks) {
            for (const seq of call.seqs) expect(fake.settled.get(seq)).toBe('acked')
          }
          const ackErrors = heard.errors.filter((e) => /acknowledging/.test(e.message))
          expect(ackErrors).toHaveLength(failedAcks.length)
          expect(heard.errors.filter((e) => e.message === 'listener threw')).toHaveLength(
            listenerThrows,
          )
          expect(listenerThrows).toBe(
            config.throwingListeners
              ? heard.disconnect.length + heard.reconnect.length + heard.dead.length
              : 0,
          )
          expect(
            heard.errors.length - ackErrors.length - listenerThrows,
            heard.errors.map((e) => e.message).join('\n'),
          ).toBe(0)

          const givenBack = fake.closeCalls[0].length
          coverage.runs++
          coverage.givenBack += givenBack
          if (refused > 0) coverage.refusedRuns++
          coverage.dead += fake.dead.length
          coverage.retried += fake.retried.length
          coverage.failedAcks += failedAcks.length
          await queue.stop()
          queue = undefined
        },
      ),
      { numRuns: Number(process.env.MODEL_RUNS ?? 30) },
    )
    console.log('broker-source model coverage', coverage)
    expect(coverage.dead).toBeGreaterThan(0)
    expect(coverage.retried).toBeGreaterThan(0)
    expect(coverage.givenBack).toBeGreaterThan(0)
    expect(coverage.refusedRuns).toBeGreaterThan(0)
  })
})
