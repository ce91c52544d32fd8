import type { ChannelModel, Options, RecoveringChannelModel } from 'amqplib'
import { invalid } from '../../check-options.js'
import { describeValue } from '../../errors.js'
import type { SourceOptions } from '../source.js'
import {
  type ResolvedSourceOptions,
  resolveSourceOptions,
  SOURCE_OPTION_KEYS,
} from '../source-options.js'

export const LABEL = 'amqpSource()'

/** How deliveries are counted for maxDeliveries, and what assertQueue declares. */
export type AmqpQueueType = 'quorum' | 'classic'

export interface AmqpSourceOptions<T = unknown> extends SourceOptions<T> {
  /**
   * Where to connect. The source opens its own connection, reconnects it after a loss, and
   * closes it in close(). Give `url` or `connection`, not both.
   * @example 'amqp://guest:guest@127.0.0.1:5672'
   */
  url?: string | Options.Connect
  /**
   * Socket options for the source's own connection (`url`), as amqplib's `connect()` takes them.
   * @default {}
   * @example { heartbeat: 10 }
   */
  socketOptions?: Record<string, unknown>
  /**
   * A connection you made: the source opens its own channel on it and never closes the
   * connection. After a lost channel it opens another; after a lost connection it can go on only
   * if the connection recovers by itself (amqplib's `connect(url, { recovery: true })`).
   * @example await amqp.connect(url, { recovery: true })
   */
  connection?: ChannelModel | RecoveringChannelModel
  /** The queue to consume. @example 'orders' */
  queue: string
  /**
   * Declare the queue (durable, of `queueType`, dead-lettering to `deadLetterExchange`) and the
   * dead-letter exchange and queue, on every (re)connect. false: they must exist already (a
   * missing queue ends the source: consume() rejects with SOURCE_FAILED), and the queue must
   * have a dead-letter exchange (else RabbitMQ drops dead letters).
   * @default true
   */
  assertQueue?: boolean
  /**
   * What assertQueue declares. A quorum queue counts deliveries itself (`x-acquired-count` on
   * RabbitMQ 4.x, `x-delivery-count` on 3.x), crashes included, and a retry is a `basic.reject`
   * requeue. A classic queue only flags a redelivery: the source counts in a header of its own
   * (`x-conveyor-deliveries`) by publishing a counted copy and acking the original, and a retry
   * publishes that copy at once (it goes to the back of the queue). Redeliveries RabbitMQ did not
   * count are counted so whatever this says, so maxDeliveries holds on any queue.
   * @default 'quorum'
   */
  queueType?: AmqpQueueType
  /**
   * More queue arguments for assertQueue (a different value than the existing queue's is a
   * channel error: RabbitMQ refuses to redeclare a queue with other arguments).
   * @default {}
   * @example { 'x-delivery-limit': 20 }
   */
  queueArguments?: Record<string, unknown>
  /** The exchange dead letters go to (a direct exchange when asserted). @default `${queue}.dlx` */
  deadLetterExchange?: string
  /** The routing key dead letters carry. @default the queue's name */
  deadLetterRoutingKey?: string
  /**
   * The queue bound to the dead-letter exchange that keeps dead letters (asserted with the rest);
   * false: don't declare one (you bind your own).
   * @default `${queue}.dead`
   */
  deadLetterQueue?: string | false
}

/** What the adapter needs: the RabbitMQ options, and two of the shared ones. */
export interface AmqpAdapterOptions {
  maxInFlight: number
  closeTimeoutMs: number
  url: string | Options.Connect | undefined
  socketOptions: Record<string, unknown>
  connection: ChannelModel | RecoveringChannelModel | undefined
  queue: string
  assertQueue: boolean
  queueType: AmqpQueueType
  queueArguments: Record<string, unknown>
  deadLetterExchange: string
  deadLetterRoutingKey: string
  deadLetterQueue: string | false
}

export interface ResolvedAmqpOptions<T> {
  shared: ResolvedSourceOptions<T>
  adapter: AmqpAdapterOptions
}

const KEYS = [
  ...SOURCE_OPTION_KEYS,
  'url',
  'socketOptions',
  'connection',
  'queue',
  'assertQueue',
  'queueType',
  'queueArguments',
  'deadLetterExchange',
  'deadLetterRoutingKey',
  'deadLetterQueue',
] as const

/** AMQP short strings (queue, exchange and routing key names) are at most 255 bytes. */
function nameOption(name: string, value: unknown, fallback?: string, empty = false): string {
  if (value === undefined && fallback !== undefined) return fallback
  if (
    typeof value !== 'string' ||
    (value.length === 0 && !empty) ||
    Buffer.byteLength(value) > 255
  ) {
    throw invalid(
      LABEL,
      `${name} must be a ${empty ? '' : 'non-empty '}string of at most 255 bytes, got ${describeValue(value)}`,
    )
  }
  return value
}

function plainObject(name: string, value: unknown): Record<string, unknown> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(LABEL, `${name} must be an object, got ${describeValue(value)}`)
  }
  return value as Record<string, unknown>
}

function isConnection(value: unknown): value is ChannelModel | RecoveringChannelModel {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ChannelModel).createChannel === 'function' &&
    typeof (value as ChannelModel).on === 'function'
  )
}

/** Checks amqpSource()'s options; every mistake is an INVALID_OPTION naming the option. */
export function resolveAmqpOptions<T>(options: unknown): ResolvedAmqpOptions<T> {
  if (options === undefined) {
    throw invalid(LABEL, 'options are required: { url or connection, queue, … }')
  }
  const { shared, all } = resolveSourceOptions<T>(LABEL, options, KEYS)
  const queue = nameOption('queue', all.queue)
  const { url, connection } = all
  if ((url === undefined) === (connection === undefined)) {
    throw invalid(
      LABEL,
      url === undefined
        ? 'give url (the source connects and reconnects) or connection (one you made)'
        : 'give url or connection, not both',
    )
  }
  if (url !== undefined && typeof url !== 'string' && (typeof url !== 'object' || url === null)) {
    throw invalid(
      LABEL,
      `url must be an AMQP URL ('amqp://user:pass@host:5672/vhost') or amqplib's connect options object, got ${describeValue(url)}`,
    )
  }
  if (connection !== undefined && !isConnection(connection)) {
    throw invalid(
      LABEL,
      `connection must be an amqplib connection (await amqp.connect(url)), got ${describeValue(connection)}`,
    )
  }
  const socketOptions = plainObject('socketOptions', all.socketOptions)
  if (connection !== undefined && all.socketOptions !== undefined) {
    throw invalid(LABEL, 'socketOptions go with url: a connection you made has its own')
  }
  const assertQueue = all.assertQueue ?? true
  if (typeof assertQueue !== 'boolean') {
    throw invalid(LABEL, `assertQueue must be true or false, got ${describeValue(assertQueue)}`)
  }
  const queueType = all.queueType ?? 'quorum'
  if (queueType !== 'quorum' && queueType !== 'classic') {
    throw invalid(LABEL, `queueType must be 'quorum' or 'classic', got ${describeValue(queueType)}`)
  }
  const queueArguments = plainObject('queueArguments', all.queueArguments)
  const deadLetterQueue =
    all.deadLetterQueue === false
      ? false
      : nameOption('deadLetterQueue', all.deadLetterQueue, `${queue}.dead`)
  return {
    shared,
    adapter: {
      maxInFlight: shared.maxInFlight,
      closeTimeoutMs: shared.closeTimeoutMs,
      url: url as string | Options.Connect | undefined,
      socketOptions,
      connection: connection as ChannelModel | RecoveringChannelModel | undefined,
      queue,
      assertQueue,
      queueType,
      queueArguments,
      deadLetterExchange: nameOption('deadLetterExchange', all.deadLetterExchange, `${queue}.dlx`),
      deadLetterRoutingKey: nameOption(
        'deadLetterRoutingKey',
        all.deadLetterRoutingKey,
        queue,
        true,
      ),
      deadLetterQueue,
    },
  }
}
