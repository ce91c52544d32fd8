import amqp, { type ChannelModel } from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type ConveyorError, createQueue, type Queue } from '../../../dist/src/index.js'
import {
  type AmqpSource,
  type AmqpSourceOptions,
  amqpSource,
} from '../../../dist/src/sources/amqp/index.js'
import { brokerUp } from '../support/brokers.js'
import { AMQP_URL, Counters, fixture, Rabbit, sleep, spyOn, TcpProxy, waitFor } from './support.js'

/*
 * amqpSource() against the live RabbitMQ (127.0.0.1:5672): the light tests, one behaviour
 * each. The heavy ones (20 000 messages, consumer processes killed, the connection cut) are in
 * the *.serial.test.ts files next to this one.
 */

interface Heard {
  disconnect: Error[]
  reconnect: number[]
  dead: { id: string; error: Error; deliveries: number; value: unknown }[]
  errors: Error[]
}

describe.runIf(await brokerUp('rabbitmq'))('amqpSource against RabbitMQ', () => {
  let rabbit: Rabbit
  const running: { queue: Queue; source: AmqpSource<unknown> }[] = []

  beforeAll(async () => {
    rabbit = await Rabbit.open()
  })
  afterEach(async () => {
    for (const { queue, source } of running.splice(0)) {
      await queue.stop({ timeoutMs: 1000 }).catch(() => {})
      await source.close().catch(() => {})
    }
  })
  afterAll(async () => {
    await rabbit.close()
  })

  /** A queue (counting handler) consuming an amqpSource; what the source tells, recorded. */
  async function consumer(
    options: Omit<AmqpSourceOptions, 'url'> & { url?: string },
    { threads = 2, size = 1000 }: { threads?: number; size?: number } = {},
  ) {
    const calls = new Counters(size)
    const returned = new Counters(size)
    const queue = createQueue({
      handler: fixture('counting-handler.mjs'),
      threads,
      retry: { attempts: 1 },
      workerData: { calls: calls.buffer, returned: returned.buffer },
    })
    await queue.start()
    const source = amqpSource(
      options.connection ? options : { url: AMQP_URL, ...options },
    ) as AmqpSource<unknown>
    const heard: Heard = { disconnect: [], reconnect: [], dead: [], errors: [] }
    source.on('disconnect', ({ error }) => heard.disconnect.push(error))
    source.on('reconnect', ({ attempts }) => heard.reconnect.push(attempts))
    source.on('dead-letter', (letter) => heard.dead.push(letter))
    source.on('error', (error) => heard.errors.push(error))
    running.push({ queue, source })
    const consuming = queue.consume(source)
    const stop = async (timeoutMs = 10_000) => {
      const report = await queue.stop({ timeoutMs })
      await source.close()
      await consuming
      return report
    }
    return { queue, source, heard, calls, returned, stop }
  }

  it('acks each message once, after its handler returned, with multiple=true only over finished ones', async () => {
    const name = await rabbit.queue('amqp-acks')
    // The source opens its channel on this connection: the spy sees every ack it sends.
    const connection = await amqp.connect(AMQP_URL)
    let returnedRef: Counters | undefined
    const spy = spyOn(connection, (id) => returnedRef!.get(id) > 0)
    const n = 600
    const c = await consumer({ connection: spy.model, queue: name, maxInFlight: 32 })
    returnedRef = c.returned
    // Uneven handler times: messages finish out of delivery order, across 2 lanes.
    await rabbit.publish(
      name,
      Array.from({ length: n }, (_, i) => ({ id: i + 1, slowMs: (i * 7) % 3 })),
    )
    await waitFor(() => spy.violations.length > 0 || c.returned.total() === n, 'all handled')
    await c.stop()
    expect(spy.violations).toEqual([])
    // Batched: far fewer ack frames than messages (how many are single depends on timing).
    expect(spy.counts.acked, JSON.stringify(spy.counts)).toBe(n)
    expect(spy.counts.multiples, JSON.stringify(spy.counts)).toBeGreaterThan(0)
    for (let id = 1; id <= n; id++) expect(c.calls.get(id), `message ${id}`).toBe(1)
    await rabbit.waitForDepth(name, 0)
    expect([c.heard.disconnect, c.heard.errors]).toEqual([[], []])
    // The connection was the user's: close() left it open.
    const channel = await connection.createChannel()
    await channel.close()
    await connection.close()
  })

  it('retries a failed message (basic.reject) until maxDeliveries, then dead-letters it to <queue>.dead; undecodable at once', async () => {
    const name = await rabbit.queue('amqp-dead')
    const c = await consumer({ queue: name, maxDeliveries: 3 })
    const bodies = Array.from({ length: 30 }, (_, i) => {
      const id = i + 1
      return { id, fail: id % 3 === 0 ? 99 : id % 3 === 1 ? 1 : 0 }
    })
    await rabbit.publish(name, [...bodies, Buffer.from('{not json'), Buffer.from('nope')])
    await waitFor(() => c.heard.dead.length === 12, 'twelve dead letters')
    await waitFor(() => c.returned.total() === 20, 'the others handled')
    await c.stop()
    for (const { id, fail } of bodies) {
      expect(c.calls.get(id), `calls of message ${id}`).toBe(fail === 99 ? 3 : fail + 1)
      expect(c.returned.get(id), `message ${id}`).toBe(fail === 99 ? 0 : 1)
    }
    const byHandler = c.heard.dead.filter((d) => d.deliveries === 3)
    expect(byHandler.map((d) => Number(d.id)).sort((a, b) => a - b)).toEqual(
      bodies.filter((b) => b.fail === 99).map((b) => b.id),
    )
    for (const d of byHandler) expect(d.error.message).toBe(`message ${d.id} fails (call 3)`)
    const undecodable = c.heard.dead.filter((d) => d.deliveries !== 3)
    expect(undecodable.map((d) => [(d.error as ConveyorError).code, d.deliveries])).toEqual([
      ['DECODE_FAILED', 1],
      ['DECODE_FAILED', 1],
    ])
    await rabbit.waitForDepth(`${name}.dead`, 12)
    const dead = await rabbit.takeAll(`${name}.dead`)
    expect(dead).toHaveLength(12)
    for (const d of dead) {
      expect(d.headers['x-first-death-reason']).toBe('rejected')
      expect(d.headers['x-first-death-queue']).toBe(name)
    }
    expect(dead.map((d) => d.raw.toString()).filter((s) => !s.startsWith('{"id"'))).toEqual([
      '{not json',
      'nope',
    ])
    await rabbit.waitForDepth(name, 0)
    expect(c.heard.disconnect).toEqual([])
  })

  it('never has more than maxInFlight messages delivered and not acked (basic.qos)', async () => {
    const name = await rabbit.queue('amqp-credit')
    const n = 40
    await rabbit.publish(
      name,
      Array.from({ length: n }, (_, i) => ({ id: i + 1, slowMs: 5 })),
    )
    const c = await consumer({ queue: name, maxInFlight: 3 }, { threads: 1 })
    let polls = 0
    while (c.returned.total() < n) {
      const returned = c.returned.total()
      const depth = await rabbit.depth(name)
      // Delivered to this consumer = acked (≤ returned) + unacked (≤ prefetch 3).
      expect(depth).toBeGreaterThanOrEqual(n - returned - 3)
      expect(c.source.inFlight).toBeLessThanOrEqual(3)
      polls++
      await sleep(3)
    }
    expect(polls).toBeGreaterThan(5)
    await c.stop()
    await rabbit.waitForDepth(name, 0)
  })

  it('close() acks what finished and gives back what did not: it comes again, counted', async () => {
    const name = await rabbit.queue('amqp-close')
    const n = 20
    await rabbit.publish(
      name,
      Array.from({ length: n }, (_, i) => ({ id: i + 1, slowMs: 40 })),
    )
    const c = await consumer({ queue: name, maxInFlight: 8 }, { threads: 1 })
    await waitFor(() => c.returned.total() >= 3, 'three handled')
    await c.stop()
    const handled = new Set<number>()
    for (let id = 1; id <= n; id++) if (c.returned.get(id) > 0) handled.add(id)
    const left = await rabbit.takeAll(name)
    const leftIds = left.map((m) => (m.body as { id: number }).id)
    expect(leftIds.length).toBeGreaterThan(0)
    expect(leftIds.filter((id) => handled.has(id))).toEqual([]) // nothing finished left behind
    expect(handled.size + leftIds.length).toBe(n) // nothing lost
    // What the source held but did not finish came back counted (x-delivery-count on 3.x).
    const counted = left.filter(
      (m) => Number(m.headers['x-delivery-count'] ?? m.headers['x-acquired-count'] ?? 0) > 0,
    )
    expect(counted.length).toBeGreaterThan(0)
  })

  it('a handler slower than anything else is not handed to a second consumer while it runs', async () => {
    const name = await rabbit.queue('amqp-slow')
    const a = await consumer({ queue: name, maxInFlight: 1 }, { threads: 1 })
    const b = await consumer({ queue: name, maxInFlight: 1 }, { threads: 1 })
    await rabbit.publish(
      name,
      Array.from({ length: 4 }, (_, i) => ({ id: i + 1, slowMs: 700 })),
    )
    await waitFor(() => a.returned.total() + b.returned.total() === 4, 'four slow messages')
    await a.stop()
    await b.stop()
    for (let id = 1; id <= 4; id++) expect(a.calls.get(id) + b.calls.get(id)).toBe(1)
    expect(a.returned.total()).toBeGreaterThan(0)
    expect(b.returned.total()).toBeGreaterThan(0)
  })

  it.each([
    ['classic', 'the copy at once'],
    ['quorum', 'a requeue, then the copy'],
  ] as const)(
    'classic queue, queueType %s: counts deliveries in its own header (retry: %s), redeliveries after a lost channel included',
    async (queueType) => {
      const name = await rabbit.queue('amqp-classic', 'classic')
      await rabbit.publish(name, [
        { id: 1, fail: 99 },
        { id: 2, fail: 1 },
      ])
      // A consumer that took message 1 and went away: RabbitMQ requeues it, flagged redelivered.
      const other: ChannelModel = await amqp.connect(AMQP_URL)
      const channel = await other.createChannel()
      const got = await channel.get(name)
      expect(got && JSON.parse(got.content.toString())).toEqual({ id: 1, fail: 99 })
      await channel.close()
      await other.close()
      // Declared classic above: a source declaring it quorum would be refused (assertQueue false).
      const c = await consumer({ queue: name, queueType, assertQueue: false, maxDeliveries: 3 })
      await waitFor(() => c.heard.dead.length === 1 && c.returned.get(2) === 1, 'both ended')
      await c.stop()
      // Message 1: one uncounted delivery elsewhere, then 2 here: dead-lettered at the 3rd.
      expect(c.calls.get(1)).toBe(2)
      expect(c.heard.dead.map((d) => [d.deliveries, d.error.message])).toEqual([
        [3, 'message 1 fails (call 2)'],
      ])
      expect(c.calls.get(2)).toBe(2)
      await rabbit.waitForDepth(`${name}.dead`, 1)
      const dead = await rabbit.takeAll(`${name}.dead`)
      expect(dead.map((d) => [d.body, d.headers['x-conveyor-deliveries']])).toEqual([
        [{ id: 1, fail: 99 }, 2],
      ])
      await rabbit.waitForDepth(name, 0)
    },
  )

  it.each(['classic', 'quorum'] as const)(
    '%s queue: a delivery lost with its channel counts (a crash loop ends at maxDeliveries)',
    async (type) => {
      const proxy = await TcpProxy.start()
      try {
        const name = await rabbit.queue(`amqp-lost-${type}`, type)
        await rabbit.publish(name, [{ id: 1, fail: 99, slowMs: 600 }])
        const c = await consumer(
          { url: proxy.url, queue: name, queueType: type, maxDeliveries: 3 },
          { threads: 1 },
        )
        // Delivery 1 fails; delivery 2 is cut off while its handler runs: it comes back
        // redelivered, and counts as the 2nd, so the 3rd is the last.
        await waitFor(() => c.calls.get(1) === 2, 'the second delivery running')
        // A classic queue's retry publishes a copy, then acks the original once RabbitMQ has
        // confirmed the copy, which may come after the copy's delivery: a cut in between brings
        // both back (at least once). Let that ack land while the handler still runs.
        await sleep(150)
        proxy.cut()
        await waitFor(() => c.heard.dead.length === 1, 'the dead letter')
        await c.stop()
        expect(c.calls.get(1)).toBe(3)
        expect(c.heard.dead.map((d) => d.deliveries)).toEqual([3])
        expect(c.heard.reconnect).toEqual([1])
        await rabbit.waitForDepth(`${name}.dead`, 1)
      } finally {
        await proxy.close()
      }
    },
  )

  it('declares its queue, dead-letter exchange and queue', async () => {
    const name = rabbit.name('amqp-declare')
    const c = await consumer({ queue: name, maxDeliveries: 1 })
    await waitFor(async () => {
      const probe = await rabbit.connection.createChannel()
      probe.on('error', () => {})
      try {
        await probe.checkQueue(name)
        await probe.close()
        return true
      } catch {
        return false
      }
    }, 'the source to declare its queue')
    await rabbit.publish(name, [{ id: 1, fail: 1 }])
    await waitFor(() => c.heard.dead.length === 1, 'the dead letter')
    await c.stop()
    await rabbit.waitForDepth(`${name}.dead`, 1)
    expect((await rabbit.takeAll(`${name}.dead`)).map((d) => d.body)).toEqual([{ id: 1, fail: 1 }])
    // Without assertQueue, a missing queue ends the source: refused.test.ts.
  })
})
