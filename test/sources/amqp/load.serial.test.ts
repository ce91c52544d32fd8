import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQueue } from '../../../dist/src/index.js'
import { type AmqpSource, amqpSource } from '../../../dist/src/sources/amqp/index.js'
import { brokerUp } from '../support/brokers.js'
import { AMQP_URL, Counters, fixture, Rabbit, spyOn, waitFor } from './support.js'

/*
 * 20 000 messages through a queue of 2 threads, a handler that throws for some: one in 100
 * always (dead-lettered at maxDeliveries 3), one in 100 once (acked at its 2nd delivery). The
 * source runs on a watched connection (support.ts spyOn): every tag is settled exactly once,
 * no ack before its handler returned; the acks, rejects and nacks add up; the queue ends
 * empty and the dead-letter queue holds exactly the always-failing ones.
 */

const N = 20_000
const plan = (id: number) => (id % 100 === 0 ? 99 : id % 100 === 1 ? 1 : 0)

describe.runIf(await brokerUp('rabbitmq'))('amqpSource, 20 000 messages', () => {
  let rabbit: Rabbit
  beforeAll(async () => {
    rabbit = await Rabbit.open()
  })
  afterAll(async () => {
    await rabbit.close()
  })

  it('acks each message exactly once or dead-letters it; nothing left pending', async () => {
    const name = await rabbit.queue('amqp-load')
    await rabbit.publish(
      name,
      Array.from({ length: N }, (_, i) => ({ id: i + 1, fail: plan(i + 1) })),
    )
    const calls = new Counters(N)
    const returned = new Counters(N)
    const queue = createQueue({
      handler: fixture('counting-handler.mjs'),
      threads: 2,
      retry: { attempts: 1 },
      workerData: { calls: calls.buffer, returned: returned.buffer },
    })
    await queue.start()
    const connection = await amqp.connect(AMQP_URL)
    const spy = spyOn(connection, (id) => returned.get(id) > 0)
    const source = amqpSource({
      connection: spy.model,
      queue: name,
      maxInFlight: 64,
      maxDeliveries: 3,
    }) as AmqpSource<unknown>
    const dead: number[] = []
    const trouble: string[] = []
    source.on('dead-letter', ({ deliveries }) => dead.push(deliveries))
    source.on('disconnect', ({ error }) => trouble.push(`disconnect: ${error.message}`))
    source.on('error', (error) => trouble.push(`error: ${error.message}`))
    const started = performance.now()
    const consuming = queue.consume(source)
    const failing = N / 100
    await waitFor(
      () =>
        spy.violations.length + trouble.length > 0 ||
        (returned.total() === N - failing && dead.length === failing),
      'every message acked or dead',
      90_000,
    )
    const ms = performance.now() - started
    const report = await queue.stop({ timeoutMs: 10_000 })
    await source.close()
    await consuming
    await connection.close()
    console.log(`20 000 messages in ${Math.round(ms)} ms; ${JSON.stringify(spy.counts)}`)

    expect(trouble).toEqual([])
    expect(spy.violations).toEqual([])
    for (let id = 1; id <= N; id++) {
      const fail = plan(id)
      expect(calls.get(id), `calls of message ${id}`).toBe(fail === 99 ? 3 : fail + 1)
      expect(returned.get(id), `message ${id}`).toBe(fail === 99 ? 0 : 1)
    }
    expect(dead).toEqual(Array(failing).fill(3))
    // Each tag settled once: acked (the last delivery of each message that succeeded),
    // rejected to retry (1 for the fail-once ones, 2 for the always-failing), nacked to dead.
    expect(spy.counts.acked).toBe(N - failing)
    expect(spy.counts.rejected).toBe(failing + 2 * failing)
    expect(spy.counts.nacked).toBe(failing)
    expect(spy.counts.multiples).toBeGreaterThan(0)
    expect(report.completed).toBe(N - failing)
    await rabbit.waitForDepth(name, 0).catch(async (err) => {
      // Say what was left, for whoever meets this: which messages, and how RabbitMQ counted them.
      const left = (await rabbit.takeAll(name)).map((m) => ({
        id: (m.body as { id: number }).id,
        handled: returned.get((m.body as { id: number }).id),
        headers: m.headers,
      }))
      throw new Error(`${err.message}; left: ${JSON.stringify(left)}`)
    })
    await rabbit.waitForDepth(`${name}.dead`, failing)
  })
})
