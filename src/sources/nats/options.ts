import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import { invalid } from '../../check-options.js'
import { describeValue } from '../../errors.js'
import type { SourceOptions } from '../source.js'
import {
  type ResolvedSourceOptions,
  resolveSourceOptions,
  SOURCE_OPTION_KEYS,
} from '../source-options.js'
import { isLiteralSubject, isSubjectFilter, isValidName } from './subjects.js'

/** Options of `natsSource()`: where to connect, which durable consumer to pull, and how. */
export interface NatsSourceOptions<T = unknown> extends SourceOptions<T> {
  /**
   * A connection you made (`connect()` from `@nats-io/transport-node`): the source pulls and
   * acks on it and leaves it open on close(). Give it `maxReconnectAttempts: -1`, or it closes
   * for good after a long outage (the client's default gives up after 10 tries). Not with
   * `servers` or `connectOptions`.
   * @default none: the source opens its own connection to `servers`
   * @example connection: await connect({ servers: 'nats://nats:4222', maxReconnectAttempts: -1 })
   */
  connection?: NatsConnection
  /**
   * Servers for the connection the source opens itself (and closes on close()). It reconnects
   * forever.
   * @default '127.0.0.1:4222'
   * @example servers: ['nats://nats-1:4222', 'nats://nats-2:4222']
   */
  servers?: string | string[]
  /**
   * More options for the connection the source opens (credentials, TLS, name, ping interval).
   * @default { name: 'conveyor-lanes', maxReconnectAttempts: -1 }
   * @example connectOptions: { user: 'worker', pass: process.env.NATS_PASS }
   */
  connectOptions?: Omit<NodeConnectionOptions, 'servers'>
  /**
   * The JetStream stream to consume. It must exist (the source never creates it).
   * @example stream: 'ORDERS'
   */
  stream: string
  /**
   * The durable pull consumer to pull from. Every process given the same name shares its
   * messages: that is how you scale out.
   * @example consumer: 'order-workers'
   */
  consumer: string
  /**
   * Create the durable consumer (or update it) with `ack_policy: explicit`,
   * `ack_wait: ackWaitMs`, `max_deliver: -1` (the source dead-letters after maxDeliveries) and
   * `filterSubject`; and create a stream `<stream>_DEAD` for `deadLetterSubject` when no stream
   * stores it. Without it, both must exist and fit (checked on connect; else the source ends:
   * consume() rejects with SOURCE_FAILED).
   * @default false
   */
  createConsumer?: boolean
  /**
   * With createConsumer: the consumer takes only the stream's messages on these subjects.
   * @default every subject of the stream
   * @example filterSubject: 'orders.created'
   */
  filterSubject?: string
  /**
   * The consumer's `ack_wait`: a message not acked (or extended) this long after its delivery
   * is delivered again, to any process. The source extends every unfinished message
   * (`+WPI`, msg.working()) every ackWaitMs / 3, so slow handlers keep theirs. An existing
   * consumer's ack_wait must be at least this.
   * @default 30000
   */
  ackWaitMs?: number
  /**
   * Where a message goes after maxDeliveries failed deliveries (or one it cannot decode): it is
   * published there with JetStream (headers `Conveyor-Stream`, `Conveyor-Subject`,
   * `Conveyor-Sequence`, `Conveyor-Deliveries`, `Conveyor-Error`), then terminated (`+TERM`)
   * in its stream. A stream must store this subject, and this consumer must not receive it.
   * @default '<stream>.dead'
   * @example deadLetterSubject: 'dead.orders'
   */
  deadLetterSubject?: string
  /**
   * How long one pull request waits on the server for messages before it expires and is sent
   * again (close() does not wait for it).
   * @default 5000
   */
  expiresMs?: number
  /**
   * How long JetStream waits before delivering again a message the queue gave up on (a
   * `-NAK` with this delay); 0: at once.
   * @default 0
   */
  retryDelayMs?: number
}

export interface ResolvedNatsOptions {
  connection: NatsConnection | undefined
  servers: string[]
  connectOptions: Omit<NodeConnectionOptions, 'servers'>
  stream: string
  consumer: string
  createConsumer: boolean
  filterSubject: string | undefined
  ackWaitMs: number
  deadLetterSubject: string
  expiresMs: number
  retryDelayMs: number
  maxInFlight: number
  maxDeliveries: number
}

export const LABEL = 'natsSource()'

const NATS_OPTION_KEYS = [
  'connection',
  'servers',
  'connectOptions',
  'stream',
  'consumer',
  'createConsumer',
  'filterSubject',
  'ackWaitMs',
  'deadLetterSubject',
  'expiresMs',
  'retryDelayMs',
] as const

const MAX_TIMER_MS = 2 ** 31 - 1

function msOption(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > MAX_TIMER_MS) {
    throw invalid(
      LABEL,
      `${name} must be a number of milliseconds ≥ ${min} and ≤ ${MAX_TIMER_MS}, got ${describeValue(value)}`,
    )
  }
  return value
}

function nameOption(name: string, value: unknown): string {
  if (typeof value !== 'string' || !isValidName(value)) {
    throw invalid(
      LABEL,
      `${name} must be a JetStream name (no dots, wildcards, slashes or spaces), got ${describeValue(value)}`,
    )
  }
  return value
}

function serversOption(value: unknown): string[] {
  if (value === undefined) return ['127.0.0.1:4222']
  const list = typeof value === 'string' ? [value] : value
  if (
    !Array.isArray(list) ||
    list.length === 0 ||
    !list.every((s) => typeof s === 'string' && s.length > 0)
  ) {
    throw invalid(
      LABEL,
      `servers must be a server URL or a non-empty array of them, got ${describeValue(value)}`,
    )
  }
  return list as string[]
}

function isConnection(value: unknown): value is NatsConnection {
  const c = value as Partial<NatsConnection> | null
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.publish === 'function' &&
    typeof c.subscribe === 'function' &&
    typeof c.flush === 'function' &&
    typeof c.status === 'function'
  )
}

/** Checks natsSource()'s options (INVALID_OPTION errors) and fills in the defaults. */
export function resolveNatsOptions<T>(options: unknown): {
  shared: ResolvedSourceOptions<T>
  nats: ResolvedNatsOptions
} {
  if (options === undefined) {
    throw invalid(LABEL, 'options are required: { stream, consumer, … }')
  }
  const { shared, all } = resolveSourceOptions<T>(LABEL, options, [
    ...SOURCE_OPTION_KEYS,
    ...NATS_OPTION_KEYS,
  ])
  const stream = nameOption('stream', all.stream)
  const consumer = nameOption('consumer', all.consumer)

  if (all.connection !== undefined && !isConnection(all.connection)) {
    throw invalid(
      LABEL,
      `connection must be a NatsConnection (from connect() of @nats-io/transport-node), got ${describeValue(all.connection)}`,
    )
  }
  const connection = all.connection as NatsConnection | undefined
  if (connection && all.servers !== undefined) {
    throw invalid(LABEL, 'give connection or servers, not both')
  }
  if (connection && all.connectOptions !== undefined) {
    throw invalid(
      LABEL,
      'connectOptions apply to the connection the source opens: not with connection',
    )
  }
  const servers = serversOption(all.servers)
  const connectOptions = all.connectOptions ?? {}
  if (
    typeof connectOptions !== 'object' ||
    connectOptions === null ||
    Array.isArray(connectOptions)
  ) {
    throw invalid(LABEL, `connectOptions must be an object, got ${describeValue(connectOptions)}`)
  }
  if ('servers' in connectOptions) {
    throw invalid(LABEL, 'connectOptions.servers: use the servers option')
  }

  const createConsumer = all.createConsumer ?? false
  if (typeof createConsumer !== 'boolean') {
    throw invalid(
      LABEL,
      `createConsumer must be true or false, got ${describeValue(createConsumer)}`,
    )
  }
  const filterSubject = all.filterSubject
  if (filterSubject !== undefined) {
    if (typeof filterSubject !== 'string' || !isSubjectFilter(filterSubject)) {
      throw invalid(
        LABEL,
        `filterSubject must be a subject (wildcards * and > allowed), got ${describeValue(filterSubject)}`,
      )
    }
    if (!createConsumer) {
      throw invalid(
        LABEL,
        'filterSubject applies with createConsumer: true (an existing consumer keeps its own filter)',
      )
    }
  }
  const deadLetterSubject = all.deadLetterSubject ?? `${stream}.dead`
  if (typeof deadLetterSubject !== 'string' || !isLiteralSubject(deadLetterSubject)) {
    throw invalid(
      LABEL,
      `deadLetterSubject must be a subject without wildcards, got ${describeValue(deadLetterSubject)}`,
    )
  }

  return {
    shared,
    nats: {
      connection,
      servers,
      connectOptions: connectOptions as Omit<NodeConnectionOptions, 'servers'>,
      stream,
      consumer,
      createConsumer,
      filterSubject,
      ackWaitMs: msOption('ackWaitMs', all.ackWaitMs, 30_000, 1000),
      deadLetterSubject,
      expiresMs: msOption('expiresMs', all.expiresMs, 5000, 1000),
      retryDelayMs: msOption('retryDelayMs', all.retryDelayMs, 0, 0),
      maxInFlight: shared.maxInFlight,
      maxDeliveries: shared.maxDeliveries,
    },
  }
}
