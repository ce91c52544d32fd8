import amqp from 'amqplib'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQueue } from '../../../dist/src/index.js'
import { type AmqpSource, amqpSource } from '../../../dist/src/sources/amqp/index.js'
import { brokerUp } from '../support/brokers.js'
import { Counters, fixture, Rabbit, spyOn, TcpProxy, waitFor } from './support.js'

/*
 * The connection cut mid-run (RabbitMQ is shared and cannot be restarted privately, so a TCP
 * proxy in this process severs the source's connection, and refuses new ones for a while).
 * RabbitMQ requeues what the lost channel had not acked; the source reports 'disconnect',
 * reconnects with backoff, reports 'reconnect', and drops the settlements of the dead channel's
 * deliveries (acking them on the new channel would be a channel error, PRECONDITION_FAILED).
 * Counts: every message handled at least once, acked once (the queue ends empty, nothing dead),
 * duplicates only among what was in flight at each cut (≤ maxInFlight per cut).
 */

const N = 4000
const MAX_IN_FLIGHT = 32

describe.runIf(await brokerUp('rabbitmq'))('amqpSource when the connection is cut', () => {
  let rabbit: Rabbit
  let proxy: TcpProxy
  beforeAll(async () => {
    rabbit = await Rabbit.open()
    proxy = await TcpProxy.start()
  })
  afterAll(async () => {
    await proxy.close()
    await rabbit.close()
  })

  async function run(connect: 'url' | 'recovering connection') {
    const name = await rabbit.queue('amqp-cut')
    // Slow messages around the second cut: the lost channel's deliveries still run after the
    // source reconnected, and their acks must not go to the new channel.
    const slow = (id: number) => id > N / 2 + 150 && id <= N / 2 + 260
    await rabbit.publish(
      name,
      Array.from({ length: N }, (_, i) => ({ id: i + 1, slowMs: slow(i + 1) ? 25 : 0.3 })),
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
    const connection =
      connect === 'url'
        ? undefined
        : await amqp.connect(proxy.url, {
            recovery: { initialDelay: 20, maxDelay: 200 },
          })
    connection?.on('error', () => {})
    // On the user's connection, every ack is watched: none for a tag of a lost channel on the
    // new one (same numbers, other messages), none before its handler returned.
    const spy = connection && spyOn(connection, (id) => returned.get(id) > 0)
    const source = amqpSource({
      ...(spy ? { connection: spy.model } : { url: proxy.url }),
      queue: name,
      maxInFlight: MAX_IN_FLIGHT,
      reconnect: { backoffMs: 20, maxBackoffMs: 200 },
    }) as AmqpSource<unknown>
    const disconnects: { message: string; attempt: number }[] = []
    const reconnects: number[] = []
    const errors: string[] = []
    source.on('disconnect', ({ error, attempt }) =>
      disconnects.push({ message: error.message, attempt }),
    )
    source.on('reconnect', ({ attempts }) => reconnects.push(attempts))
    source.on('error', (error) => errors.push(error.message))
    const consuming = queue.consume(source)
    const cutsBefore = proxy.cuts

    await waitFor(() => returned.total() >= N / 4, 'a quarter handled')
    proxy.cut(300)
    await waitFor(() => reconnects.length === 1, 'the first reconnect')
    await waitFor(() => returned.total() >= N / 2 + 200, 'half handled')
    proxy.cut(0)
    const distinct = () => {
      let handled = 0
      for (let id = 1; id <= N; id++) if (returned.get(id) > 0) handled++
      return handled
    }
    // Every message handled, and nothing more to come: no redelivery waiting, none in flight.
    await waitFor(
      async () => distinct() === N && source.inFlight === 0 && (await rabbit.depth(name)) === 0,
      'every message handled',
      60_000,
    )
    await queue.stop({ timeoutMs: 10_000 })
    await source.close()
    await consuming
    await connection?.close()

    const cuts = proxy.cuts - cutsBefore
    expect(cuts).toBe(2)
    // One run of disconnects per cut, each ended by one reconnect: no channel error besides.
    expect(reconnects).toHaveLength(cuts)
    expect(disconnects.filter((d) => d.attempt === 1)).toHaveLength(cuts)
    expect(disconnects.map((d) => d.message).join('\n')).not.toMatch(
      /PRECONDITION_FAILED|unknown delivery tag/i,
    )
    expect(errors).toEqual([])
    if (spy) {
      expect(spy.violations).toEqual([])
      expect(spy.counts.channels).toBe(3)
    }
    let duplicates = 0
    for (let id = 1; id <= N; id++) {
      expect(returned.get(id), `message ${id}`).toBeGreaterThanOrEqual(1)
      duplicates += returned.get(id) - 1
    }
    console.log(`connection cut (${connect}): ${cuts} cuts, ${duplicates} duplicates`)
    expect(duplicates).toBeLessThanOrEqual(cuts * MAX_IN_FLIGHT)
    // Nothing left pending, nothing dead: each message acked once (a second ack would have
    // been a channel error, seen above).
    await rabbit.waitForDepth(name, 0)
    await rabbit.waitForDepth(`${name}.dead`, 0)
  }

  it('with its own connection (url): reconnects, nothing lost, nothing acked twice', async () => {
    await run('url')
  })

  it("on the user's connection made with { recovery: true }: a new channel once it recovers", async () => {
    await run('recovering connection')
  })
})
