import amqp from 'amqplib'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createQueue, type Queue } from '../../../dist/src/index.js'
import {
  type AmqpSource,
  type AmqpSourceOptions,
  amqpSource,
} from '../../../dist/src/sources/amqp/index.js'
import { brokerUp, uniqueName } from '../support/brokers.js'
import { rejection } from '../support/refused.js'
import { AMQP_URL, Counters, fixture, Rabbit, waitFor } from './support.js'

/*
 * What RabbitMQ refuses for good while the source connects ends the source: consume() rejects
 * with SOURCE_FAILED naming the reply and what to change, instead of 'disconnect' events
 * forever. Each error is provoked on the live RabbitMQ (127.0.0.1:5672). A reconnect backoff of
 * a few ms: a source that took one of these for a lost connection would pile up disconnects
 * while the test waits. And one refusal that is not for good (a queue in exclusive use by
 * another consumer) is retried until it passes.
 */

describe.runIf(await brokerUp('rabbitmq'))('amqpSource() ends on what RabbitMQ refuses', () => {
  let rabbit: Rabbit
  const running: { queue: Queue; source: AmqpSource<unknown> }[] = []

  beforeAll(async () => {
    rabbit = await Rabbit.open()
  })
  afterEach(async () => {
    for (const { queue, source } of running.splice(0)) {
      await queue.stop({ timeoutMs: 1000 }).catch(() => {})
      await source.close()
    }
  })
  afterAll(async () => {
    await rabbit.close()
  })

  /** A started queue consuming an amqpSource; the disconnects and errors it tells. */
  async function consuming(options: Omit<AmqpSourceOptions, 'url'> & { url?: string }) {
    const calls = new Counters(16)
    const returned = new Counters(16)
    const queue = createQueue({
      handler: fixture('counting-handler.mjs'),
      threads: 1,
      workerData: { calls: calls.buffer, returned: returned.buffer },
    })
    const source = amqpSource({
      url: AMQP_URL,
      reconnect: { backoffMs: 5, maxBackoffMs: 10 },
      ...options,
    }) as AmqpSource<unknown>
    running.push({ queue, source })
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    const errors: Error[] = []
    source.on('error', (error) => errors.push(error))
    await queue.start()
    return { consumed: queue.consume(source), disconnects, errors, returned }
  }

  async function refused(options: Omit<AmqpSourceOptions, 'url'> & { url?: string }) {
    const c = await consuming(options)
    const error = await rejection(c.consumed)
    expect(c.disconnects).toEqual([])
    expect(c.errors).toEqual([])
    return error
  }

  it('assertQueue: false and no such queue (404 NOT_FOUND): SOURCE_FAILED, no reconnects', async () => {
    const queue = uniqueName('amqp-missing')
    const error = await refused({ queue, assertQueue: false })
    expect(error).toMatchObject({
      name: 'ConveyorError',
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        `amqpSource(): queue '${queue}' does not exist (RabbitMQ answered: Operation failed: QueueDeclare; 404 (NOT-FOUND)`,
      ),
    })
    expect(error.message).toMatch(/declare it, or let the source declare it \(assertQueue: true\)/)
    expect(error.cause).toMatchObject({ code: 404 })
  })

  it('a queue of another type than the source declares (406 PRECONDITION_FAILED): SOURCE_FAILED', async () => {
    const queue = await rabbit.queue('amqp-classic', 'classic')
    const error = await refused({ queue }) // declares it quorum
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining("inequivalent arg 'x-queue-type'"),
    })
    expect(error.message).toMatch(
      /RabbitMQ has the queue or exchange with other settings than the source declares .*: make queueType, queueArguments/,
    )
    expect(error.cause).toMatchObject({ code: 406 })
  })

  it("a name in RabbitMQ's reserved 'amq.' space (403 ACCESS_REFUSED): SOURCE_FAILED", async () => {
    const queue = `amq.${uniqueName('conveyor')}`
    const error = await refused({ queue })
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringMatching(
        /^amqpSource\(\): names starting with 'amq\.' are RabbitMQ's own \(RabbitMQ answered: .*403 \(ACCESS-REFUSED\)/,
      ),
    })
    expect(error.cause).toMatchObject({ code: 403 })
  })

  it('a login RabbitMQ refuses (403 ACCESS_REFUSED at the handshake): SOURCE_FAILED', async () => {
    const error = await refused({
      url: 'amqp://guest:not-the-password@127.0.0.1:5672',
      queue: uniqueName('amqp-login'),
    })
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        'amqpSource(): RabbitMQ refused the login (RabbitMQ answered: Handshake terminated by server: 403 (ACCESS-REFUSED)',
      ),
    })
    expect(error.message).toMatch(/check the user and password in `url`/)
  })

  it('a queue in exclusive use by another consumer (403, but not for good) is retried until it is free', async () => {
    // A classic queue: a quorum queue takes the second consumer without a word.
    const queue = await rabbit.queue('amqp-exclusive', 'classic')
    const other = await amqp.connect(AMQP_URL)
    try {
      const channel = await other.createChannel()
      const { consumerTag } = await channel.consume(queue, () => {}, { exclusive: true })
      const c = await consuming({ queue, queueType: 'classic' })
      c.consumed.catch(() => {})
      await waitFor(() => c.disconnects.length >= 3, 'three refused attempts')
      expect(c.disconnects[0].message).toMatch(/403 \(ACCESS-REFUSED\).*in exclusive use/)
      await channel.cancel(consumerTag)
      await rabbit.publish(queue, [{ id: 1 }])
      await waitFor(() => c.returned.view[1] === 1, 'the message, once the queue is free')
      await rabbit.waitForDepth(queue, 0)
    } finally {
      await other.close()
    }
  })
})
