import type { Channel, ChannelModel, ConsumeMessage, RecoveringChannelModel } from 'amqplib'
import { asError, ConveyorError } from '../../errors.js'
import type { BrokerAdapter, Delivery } from '../adapter.js'
import { loadAmqplib } from './client.js'
import { type AmqpAdapterOptions, LABEL } from './options.js'
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
 * What RabbitMQ refused while the source connected, and what to change; undefined for what a
 * reconnect may get past. Only errors of the connect (login, declare, consume) come here, never
 * a channel closed mid-run (a consumer_timeout is a 406 too), and only what is configuration:
 * - the login (handshake 403 ACCESS_REFUSED: credentials);
 * - 403 ACCESS_REFUSED on a resource (permissions, or a reserved 'amq.' name), but not a queue
 *   "in exclusive use" (another consumer's, which may go);
 * - 404 NOT_FOUND "no queue" where the source does not declare it (assertQueue: false); a 404
 *   "home node … is down or inaccessible" (a cluster node restarting) is retried;
 * - 406 PRECONDITION_FAILED "inequivalent arg": the queue or exchange exists with other
 *   arguments than the source declares.
 * Not: 405 RESOURCE_LOCKED (an exclusive queue of another connection), 530 at connection.open
 * (amqplib does not say which reply it was: a vhost missing, or one still starting).
 */
function refusal(err: Error, options: AmqpAdapterOptions): string | undefined {
  const { message } = err
  const code = (err as { code?: unknown }).code
  const { queue } = options
  const reply = `RabbitMQ answered: ${message}`
  if (/^Handshake terminated by server: 403 \(ACCESS-REFUSED\)/.test(message)) {
    return `${LABEL}: RabbitMQ refused the login (${reply}): check the user and password in \`url\``
  }
  if (code === 403 && /ACCESS_REFUSED/.test(message) && !/in exclusive use/.test(message)) {
    if (/reserved prefix/.test(message)) {
      return `${LABEL}: names starting with 'amq.' are RabbitMQ's own (${reply}): pick another queue, deadLetterExchange or deadLetterQueue`
    }
    return `${LABEL}: RabbitMQ refused access (${reply}): give the user configure, write and read permissions on queue '${queue}' and its dead-letter exchange and queue (rabbitmqctl set_permissions)`
  }
  if (code === 404 && !options.assertQueue && /NOT_FOUND - no queue/.test(message)) {
    return `${LABEL}: queue '${queue}' does not exist (${reply}): declare it, or let the source declare it (assertQueue: true)`
  }
  if (code === 406 && /PRECONDITION_FAILED - inequivalent arg/.test(message)) {
    return `${LABEL}: RabbitMQ has the queue or exchange with other settings than the source declares (${reply}): make queueType, queueArguments and the dead-letter options match it, or pass assertQueue: false to use it as it is`
  }
  return undefined
}

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
 * - refused while connecting (login, permissions, a missing queue, other arguments): fatal()
 *   says so, and the source ends instead of reconnecting (refusal()).
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
  /** Errors of a connect that no reconnect changes, with what to change (see refusal()). */
  private readonly refused = new WeakMap<object, string>()

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

  /** A login, declare or consume RabbitMQ refused for good (refusal()); else undefined. */
  fatal(error: unknown): string | undefined {
    return error instanceof Error ? this.refused.get(error) : undefined
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
    const model = await this.model().catch((err: unknown) => {
      throw this.classify(err)
    })
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
      throw this.classify(err)
    }
    if (this.closed) {
      session.lost(new Error('closed by the source'))
      await channel.close().catch(() => {})
      throw new Error('the source was closed while connecting')
    }
    this.session = session
    return session
  }

  /** The error, remembered as fatal when it is a refusal no reconnect changes. */
  private classify(err: unknown): Error {
    const error = asError(err)
    const refused = refusal(error, this.options)
    if (refused !== undefined) this.refused.set(error, refused)
    return error
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
