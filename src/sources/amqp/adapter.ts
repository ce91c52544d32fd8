import type { Channel, ChannelModel, ConsumeMessage, RecoveringChannelModel } from 'amqplib'
import { asError, ConveyorError } from '../../errors.js'
import type { BrokerAdapter, Delivery } from '../adapter.js'
import { loadAmqplib } from './client.js'
import type { AmqpAdapterOptions } from './options.js'
import { Session } from './session.js'
import { declareTopology } from './topology.js'

/** A delivery's handle: the channel (session) that delivered it, and the message. */
export interface AmqpHandle {
  readonly session: Session
  readonly message: ConsumeMessage
}

/**
 * The header the source puts on a message it publishes again (a classic queue's retry, or a
 * redelivery RabbitMQ did not count): how many deliveries the message had before this copy.
 */
export const DELIVERIES_HEADER = 'x-conveyor-deliveries'

/** How long fetch() waits for a first delivery before answering []. */
const FETCH_WAIT_MS = 500

function count(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : 0
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0
}

/** Whether RabbitMQ counted this message's deliveries (a quorum queue does, a classic does not). */
function brokerCounted(headers: Record<string, unknown>): boolean {
  return headers['x-acquired-count'] !== undefined || headers['x-delivery-count'] !== undefined
}

/**
 * How many times this message has been delivered, this delivery included. A quorum queue
 * counts: `x-acquired-count` (RabbitMQ 4.x: every earlier delivery, returned for any reason) and
 * `x-delivery-count` (3.x: the same; 4.x: failed ones only). A classic queue does not: then the
 * source's own header counts (see uncounted()).
 */
export function deliveriesOf(message: ConsumeMessage): number {
  const headers = message.properties.headers ?? {}
  const earlier = Math.max(
    count(headers['x-acquired-count']),
    count(headers['x-delivery-count']),
    count(headers[DELIVERIES_HEADER]),
    message.fields.redelivered ? 1 : 0,
  )
  return earlier + 1
}

/**
 * A redelivery RabbitMQ did not count (a classic queue's message back from a lost channel or a
 * requeue): the source counts it by publishing a copy with its count, and acking this one.
 */
export function uncounted(message: ConsumeMessage): boolean {
  return message.fields.redelivered && !brokerCounted(message.properties.headers ?? {})
}

/** Resolves with `promise`, or with undefined as soon as `signal` aborts. */
function unlessAborted<V>(promise: Promise<V>, signal: AbortSignal): Promise<V | undefined> {
  if (signal.aborted) return Promise.resolve(undefined)
  return new Promise((resolve, reject) => {
    const aborted = () => resolve(undefined)
    signal.addEventListener('abort', aborted, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', aborted)
        resolve(value)
      },
      (err) => {
        signal.removeEventListener('abort', aborted)
        reject(err)
      },
    )
  })
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
function bounded(promise: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    promise.then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      () => {
        clearTimeout(timer)
        resolve()
      },
    )
  })
}

type Model = ChannelModel | RecoveringChannelModel

/**
 * RabbitMQ for a BrokerSource. One consumer on one channel with `basic.qos` prefetch =
 * maxInFlight: RabbitMQ pushes, the channel buffers, fetch(max) hands out at most `max`.
 * - ack: `basic.ack`, one frame with multiple=true for the part of a batch that leaves no
 *   unfinished tag below it, single acks for the rest (session.ts).
 * - deliveries: counted by a quorum queue (deliveriesOf); a redelivery RabbitMQ did not count
 *   (a classic queue) is published again with the source's count and the original acked.
 * - retry: `basic.reject` requeue=true (a quorum queue counts it as a failed delivery); for
 *   queueType 'classic', a copy with the count at once (the requeue would come back uncounted).
 * - dead letter: `basic.nack` requeue=false: RabbitMQ moves it to the queue's dead-letter
 *   exchange.
 * - no lease: RabbitMQ redelivers only when the channel goes away (or after its
 *   consumer_timeout, which then closes the channel).
 * - connection or channel lost: fetch() throws; the next fetch() opens a new channel (and, for
 *   its own connection, a new connection). Settlements of the old channel's deliveries are
 *   dropped: RabbitMQ has requeued them already.
 * - close(): closing the channel hands every unfinished delivery back.
 */
export class AmqpAdapter implements BrokerAdapter<AmqpHandle> {
  private session: Session | undefined
  private opening: Promise<Session> | undefined
  /** The connection the source opened (from `url`), while it is open. */
  private own: ChannelModel | undefined
  private ownError: Error | undefined
  private sessions = 0
  private closed = false
  private readonly classic: boolean

  constructor(private readonly options: AmqpAdapterOptions) {
    this.classic = options.queueType === 'classic'
  }

  async fetch(max: number, signal: AbortSignal): Promise<Delivery<AmqpHandle>[]> {
    if (this.closed || signal.aborted) return []
    const lost = this.session
    if (lost && !lost.alive && !lost.reported) {
      // A loss is reported once ('disconnect'), even when it happened between two fetches.
      lost.reported = true
      throw lost.error
    }
    const session = await unlessAborted(this.open(), signal)
    if (!session) return []
    await session.waitForDeliveries(signal, FETCH_WAIT_MS)
    if (!session.alive) {
      session.reported = true
      throw session.error
    }
    const deliveries: Delivery<AmqpHandle>[] = []
    for (const message of session.take(max)) {
      if (uncounted(message)) {
        // Count it in a copy, and deliver that one.
        this.recount(session, message)
        continue
      }
      deliveries.push({
        handle: { session, message },
        id: message.properties.messageId ?? `${session.id}.${message.fields.deliveryTag}`,
        payload: message.content,
        deliveries: deliveriesOf(message),
      })
    }
    return deliveries
  }

  async ack(deliveries: readonly Delivery<AmqpHandle>[]): Promise<void> {
    const bySession = new Map<Session, number[]>()
    for (const { handle } of deliveries) {
      const tags = bySession.get(handle.session)
      if (tags) tags.push(handle.message.fields.deliveryTag)
      else bySession.set(handle.session, [handle.message.fields.deliveryTag])
    }
    // A lost channel's tags are dropped (session.ts): RabbitMQ requeued those messages.
    for (const [session, tags] of bySession) session.ack(tags)
  }

  async retry(delivery: Delivery<AmqpHandle>): Promise<void> {
    const { session, message } = delivery.handle
    if (!session.alive) return // requeued with its channel: it comes again
    if (this.classic) {
      await session.republish(message, this.options.queue, {
        [DELIVERIES_HEADER]: delivery.deliveries,
      })
    } else {
      session.reject(message.fields.deliveryTag, true)
    }
  }

  async deadLetter(delivery: Delivery<AmqpHandle>): Promise<void> {
    const { session, message } = delivery.handle
    if (!session.reject(message.fields.deliveryTag, false)) {
      throw new ConveyorError(
        'SOURCE_FAILED',
        `the channel that delivered message ${delivery.id} is gone: RabbitMQ delivers it again`,
        { cause: session.error },
      )
    }
  }

  async close(): Promise<void> {
    this.closed = true
    const timeoutMs = Math.max(this.options.closeTimeoutMs, 100)
    if (this.opening) await bounded(this.opening, timeoutMs)
    const session = this.session
    this.session = undefined
    if (session?.alive) {
      // The last acks and dead letters are on their way. A quorum queue holds a channel's
      // settlements back while 32 are in flight, and drops those it still holds when the channel
      // closes: their messages would come back, finished or dead-lettered. basic.cancel (RabbitMQ
      // answers once everything sent before it is applied) and one more round trip let them go.
      await bounded(
        (async () => {
          if (session.consumerTag) await session.channel.cancel(session.consumerTag)
          await session.channel.prefetch(this.options.maxInFlight)
        })(),
        timeoutMs,
      )
      // Closing the channel hands back everything it delivered and nobody acked.
      session.lost(new Error('closed by the source'))
      await bounded(session.channel.close(), timeoutMs)
    }
    const own = this.own
    this.own = undefined
    if (own) {
      await bounded(own.close(), timeoutMs)
      destroySocket(own)
    }
  }

  /** The live session, or a new one (a new channel, and a new connection where it is ours). */
  private open(): Promise<Session> {
    if (this.session?.alive) return Promise.resolve(this.session)
    this.opening ??= this.connect().finally(() => {
      this.opening = undefined
    })
    return this.opening
  }

  private async connect(): Promise<Session> {
    const model = await this.model()
    let channel: Channel
    try {
      // Confirms: the copies the source publishes (classic queues) are acked only once stored.
      channel = await model.createConfirmChannel()
    } catch (err) {
      if (!this.options.connection) throw err
      throw new ConveyorError(
        'SOURCE_FAILED',
        `could not open a channel on the connection given to amqpSource() (pass url, or a connection made with { recovery: true }, for the source to reconnect): ${asError(err).message}`,
        { cause: err },
      )
    }
    const session = new Session(++this.sessions, channel)
    let channelError: Error | undefined
    channel.on('error', (err: Error) => {
      channelError ??= err
    })
    channel.on('close', () => {
      session.lost(channelError ?? this.ownError ?? new Error('channel closed'))
    })
    try {
      await channel.prefetch(this.options.maxInFlight)
      await declareTopology(channel, this.options)
      const { consumerTag } = await channel.consume(
        this.options.queue,
        (message) => session.deliver(message),
        { noAck: false },
      )
      session.consumerTag = consumerTag
    } catch (err) {
      session.lost(asError(err))
      void channel.close().catch(() => {})
      throw asError(err)
    }
    if (this.closed) {
      session.lost(new Error('closed by the source'))
      await channel.close().catch(() => {})
      throw new Error('the source was closed while connecting')
    }
    this.session = session
    return session
  }

  private async model(): Promise<Model> {
    if (this.options.connection) return this.options.connection
    if (this.own) return this.own
    const amqp = await loadAmqplib()
    const url = this.options.url!
    const connection = await amqp.connect(url, this.options.socketOptions)
    this.ownError = undefined
    connection.on('error', (err: Error) => {
      this.ownError ??= err
    })
    connection.on('close', (err?: Error) => {
      if (this.own === connection) this.own = undefined
      this.session?.lost(err ?? this.ownError ?? new Error('connection closed'))
    })
    if (this.closed) {
      await bounded(connection.close(), 1000)
      destroySocket(connection)
      throw new Error('the source was closed while connecting')
    }
    this.own = connection
    return connection
  }

  /** A copy counting the delivery that went uncounted (republish() never rejects). */
  private recount(session: Session, message: ConsumeMessage): void {
    const headers = message.properties.headers ?? {}
    void session.republish(message, this.options.queue, {
      [DELIVERIES_HEADER]: count(headers[DELIVERIES_HEADER]) + 1,
    })
  }
}

/** A connection that did not close in time: its socket goes (RabbitMQ then requeues). */
function destroySocket(model: ChannelModel): void {
  const stream = (model.connection as unknown as { stream?: { destroy?: () => void } }).stream
  stream?.destroy?.()
}
