import type { JetStreamClient } from '@nats-io/jetstream'
import type { NatsConnection, Status } from '@nats-io/transport-node'
import { asError, ConveyorError, isConveyorError } from '../../errors.js'
import type { BrokerAdapter } from '../adapter.js'
import type { NatsClient } from './client.js'
import { Confirmations } from './confirm.js'
import { LABEL, type ResolvedNatsOptions } from './options.js'
import {
  type NatsDelivery,
  type NatsHandle,
  PullRefusedError,
  PullRequests,
  PullStatusError,
} from './pull.js'
import { prepareConsumer } from './setup.js'

const ACK = '+ACK'
const NAK = '-NAK'
const WORKING = '+WPI'
/** No reason after it: servers before 2.11 take only a bare `+TERM`. */
const TERM = '+TERM'

/** A flush (the server's PONG after what was published) or a dead letter's PubAck waits at most this long. */
const FLUSH_TIMEOUT_MS = 10_000
/** Confirmations of acks (and naks, terms) wait at most this long, then the batch is sent again. */
const CONFIRM_TIMEOUT_MS = 5000

/** One connection and what was set up on it. */
interface Session {
  nc: NatsConnection
  owned: boolean
  js: JetStreamClient
  confirm: Confirmations
  /** Pull requests, once the consumer was checked on this connection. */
  pulls: PullRequests | undefined
  status: AsyncIterable<Status> & { stop?: () => void }
  /** The connection is down (between the client's 'disconnect' and 'reconnect'). */
  down: boolean
}

/**
 * A JetStream durable pull consumer as a BrokerAdapter. The connection is opened (or taken)
 * and the consumer checked on the first fetch; a fetch that fails is retried by the source
 * after a backoff, so a broker that is down at start is waited for; but a stream or consumer
 * that is missing or does not fit ends the source (fatal()): waiting would hide it. Acks, naks
 * and terms are published to each message's ack subject on the current connection and
 * confirmed by JetStream (confirm.ts); lease extensions (`+WPI`) are flushed.
 */
export class NatsAdapter implements BrokerAdapter<NatsHandle> {
  readonly leaseMs: number
  /** Reports what no fetch or ack carries (the source's 'error' event). */
  report: (error: Error) => void = () => {}
  private opening: Promise<Session> | undefined
  private session: Session | undefined
  /** The last fetch threw: the next one that works answers at once, so 'reconnect' is told. */
  private recovering = false
  private closed = false
  /** Errors of a consumer check that no reconnect changes (see fatal()). */
  private readonly refused = new WeakSet<object>()

  constructor(
    private readonly client: NatsClient,
    private readonly options: ResolvedNatsOptions,
  ) {
    this.leaseMs = options.ackWaitMs / 3
  }

  async fetch(max: number, signal: AbortSignal): Promise<NatsDelivery[]> {
    try {
      const pulls = await this.ready()
      if (this.recovering) {
        this.recovering = false
        return pulls.takeArrived().slice(0, max)
      }
      return await pulls.fetch(max, signal)
    } catch (err) {
      this.recovering = true
      // A status ended a pull (consumer deleted, …): check the consumer again next time.
      if (err instanceof PullStatusError && this.session) this.uncheck(this.session)
      throw err
    }
  }

  /**
   * What the consumer check found wrong, which no reconnect changes: the stream is missing
   * (JetStream 10059), the consumer is missing without createConsumer (10014), either does not
   * fit (INVALID_OPTION, saying what to change), the server refused the user's JetStream API
   * requests or pulls (a permissions violation), or the user's own connection is closed for
   * good (it never reopens: no reconnect of ours applies). Everything else is retried: connection loss, timeouts,
   * no responders while JetStream starts, a pull ended by a status (the consumer is checked
   * again, and only then is a deleted one found missing).
   */
  fatal(error: unknown): string | undefined {
    if (!(error instanceof PullRefusedError || (error instanceof Error && this.refused.has(error))))
      return undefined
    // Our own words already say what to change (a consumer that does not fit, a closed connection).
    if (!isPermissionViolation(error)) return error.message
    const { stream } = this.options
    return `${LABEL}: NATS refused a JetStream API request of the source (${error.message}): allow its user to publish to '$JS.API.>' (at least the INFO and CONSUMER.MSG.NEXT requests for stream '${stream}') and '$JS.ACK.${stream}.>', and to subscribe to its inbox`
  }

  async ack(deliveries: readonly NatsDelivery[]): Promise<void> {
    await this.confirmed(deliveries, ACK, 'acks')
  }

  async retry(delivery: NatsDelivery): Promise<void> {
    const { retryDelayMs } = this.options
    const nak = retryDelayMs > 0 ? `${NAK} ${JSON.stringify({ delay: retryDelayMs * 1e6 })}` : NAK
    await this.confirmed([delivery], nak, 'naks')
  }

  async deadLetter(delivery: NatsDelivery, error: Error): Promise<void> {
    const session = this.current()
    const { stream, consumer, deadLetterSubject } = this.options
    const { handle } = delivery
    const headers = this.client.transport.headers()
    // The original headers, but not JetStream's own (a Nats-Msg-Id would deduplicate it away).
    if (handle.headers) {
      for (const [key, values] of handle.headers) {
        if (key.toLowerCase().startsWith('nats-')) continue
        for (const value of values) headers.append(key, value)
      }
    }
    headers.set('Conveyor-Stream', stream)
    headers.set('Conveyor-Subject', handle.subject)
    headers.set('Conveyor-Sequence', String(handle.sequence))
    headers.set('Conveyor-Deliveries', String(delivery.deliveries))
    headers.set('Conveyor-Error', oneLine(error.message))
    const code = (error as { code?: unknown }).code
    if (typeof code === 'string') headers.set('Conveyor-Error-Code', code)
    // Stored (PubAck) before the original is terminated; the message id makes a second copy
    // (a crash between the two, then a redelivery) a duplicate JetStream drops.
    await session.js.publish(deadLetterSubject, delivery.payload, {
      headers,
      msgID: `${stream}:${consumer}:${handle.sequence}`,
      timeout: FLUSH_TIMEOUT_MS,
    })
    await this.confirmed([delivery], TERM, 'terms')
  }

  async extend(deliveries: readonly NatsDelivery[]): Promise<void> {
    // While the connection is down nothing gets through; the next lease will.
    const session = this.session
    if (!session || session.down || session.nc.isClosed()) return
    for (const delivery of deliveries) session.nc.publish(delivery.handle.reply, WORKING)
    await flush(session.nc)
  }

  async close(unfinished: readonly NatsDelivery[]): Promise<void> {
    this.closed = true
    await this.opening?.catch(() => undefined)
    const session = this.session
    this.session = undefined
    if (!session) return
    const leftovers = (await session.pulls?.stop()) ?? []
    const giveBack = [...unfinished, ...leftovers]
    try {
      // Back to the consumer at once, for any process to take (not after ack_wait).
      if (giveBack.length > 0 && !session.nc.isClosed() && !session.down) {
        const replies = giveBack.map((d) => d.handle.reply)
        await session.confirm.send(replies, NAK, 'naks')
      }
    } catch (err) {
      this.report(
        new ConveyorError(
          'SOURCE_FAILED',
          `close(): ${giveBack.length} unfinished messages could not be handed back (they come back after ack_wait): ${asError(err).message}`,
          { cause: err },
        ),
      )
    } finally {
      session.status.stop?.()
      session.confirm.close()
      if (session.owned) await session.nc.close().catch(() => {})
    }
  }

  /** Publishes `payload` to each delivery's ack subject; resolves once JetStream applied all. */
  private async confirmed(
    deliveries: readonly NatsDelivery[],
    payload: string,
    what: string,
  ): Promise<void> {
    const { confirm } = this.current()
    await confirm.send(
      deliveries.map((d) => d.handle.reply),
      payload,
      what,
    )
  }

  /** The session to settle messages on: connected now (else the source retries later). */
  private current(): Session {
    const session = this.session
    if (!session || session.nc.isClosed()) {
      throw new ConveyorError('SOURCE_FAILED', 'not connected to NATS')
    }
    if (session.down) throw lostConnection(session)
    return session
  }

  /** The pull requests of a connection whose consumer was checked: connects and checks first. */
  private async ready(): Promise<PullRequests> {
    if (this.opening) await this.opening.catch(() => undefined)
    let session = this.session
    if (session?.nc.isClosed()) {
      this.forget(session)
      session = undefined
    }
    if (!session) {
      this.opening = this.connect()
      try {
        session = await this.opening
      } finally {
        this.opening = undefined
      }
      if (this.closed) {
        await this.discard(session)
        throw new ConveyorError('SOURCE_CLOSED', 'the source was closed')
      }
      this.session = session
    }
    if (session.down) throw lostConnection(session)
    if (!session.pulls) {
      try {
        session.pulls = await this.check(session)
      } catch (err) {
        // Configuration, not the connection: fatal() ends the source with it.
        if (isConveyorError(err, 'INVALID_OPTION') || isPermissionViolation(err)) {
          this.refused.add(err as Error)
        }
        throw err
      }
    }
    return session.pulls
  }

  private async connect(): Promise<Session> {
    const { transport, jetstream } = this.client
    const { connection, servers, connectOptions } = this.options
    if (connection?.isClosed()) {
      // A user's connection, closed for good: no reconnect of ours can reopen it.
      const closed = new ConveyorError(
        'SOURCE_FAILED',
        `${LABEL}: the connection passed as \`connection\` is closed (give it maxReconnectAttempts: -1, or pass servers and let the source connect)`,
      )
      this.refused.add(closed)
      throw closed
    }
    const nc =
      connection ??
      (await transport.connect({
        name: 'conveyor-lanes',
        maxReconnectAttempts: -1,
        ...connectOptions,
        servers,
      }))
    const status = nc.status() as Session['status']
    const session: Session = {
      nc,
      owned: !connection,
      js: jetstream.jetstream(nc),
      confirm: new Confirmations(nc, transport.createInbox(inboxPrefix(nc)), CONFIRM_TIMEOUT_MS),
      pulls: undefined,
      status,
      down: false,
    }
    void (async () => {
      for await (const s of status) {
        if (s.type === 'disconnect') {
          session.down = true
          session.confirm.failAll()
          session.pulls?.lost(lostConnection(session))
        } else if (s.type === 'reconnect') {
          session.down = false
          session.pulls?.restored()
        } else if (s.type === 'error' && isPermissionViolation(s.error)) {
          // A refused pull publish is told only here; its request would never answer.
          session.pulls?.refused(s.error)
        }
      }
    })()
    return session
  }

  /** Checks (or creates) the consumer and dead-letter stream; pulls can start. */
  private async check(session: Session): Promise<PullRequests> {
    const { transport, jetstream } = this.client
    const { nc } = session
    const jsm = await jetstream.jetstreamManager(nc)
    const limits = await prepareConsumer(jetstream, jsm, this.options)
    const { stream, consumer, expiresMs, maxInFlight } = this.options
    const prefix = inboxPrefix(nc)
    return new PullRequests(nc, {
      nextSubject: `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
      inbox: () => transport.createInbox(prefix),
      expiresMs: Math.min(expiresMs, limits.maxExpiresMs),
      maxBatch: limits.maxBatch,
      threshold: Math.max(1, Math.ceil(maxInFlight / 4)),
      giveBack: (reply) => {
        if (!nc.isClosed()) nc.publish(reply, NAK)
      },
    })
  }

  /** A pull ended with a status (consumer deleted, …): the next fetch checks the consumer again. */
  private uncheck(session: Session): void {
    const pulls = session.pulls
    if (!pulls) return
    session.pulls = undefined
    void this.giveBack(session, pulls)
  }

  /** The session's connection closed for good: the next fetch opens (or asks for) another. */
  private forget(session: Session): void {
    if (this.session === session) this.session = undefined
    session.status.stop?.()
    session.confirm.close()
  }

  private async discard(session: Session): Promise<void> {
    if (session.pulls) await this.giveBack(session, session.pulls)
    session.status.stop?.()
    session.confirm.close()
    if (session.owned) await session.nc.close().catch(() => {})
  }

  /** Stops these pulls and hands back what arrived and was never handed out. */
  private async giveBack(session: Session, pulls: PullRequests): Promise<void> {
    const leftovers = await pulls.stop()
    if (session.nc.isClosed()) return
    for (const d of leftovers) session.nc.publish(d.handle.reply, NAK)
  }
}

/**
 * The server refused a publish or subscription of this connection (nats.js: a RequestError
 * caused by a PermissionViolationError, or that error itself).
 */
function isPermissionViolation(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e.name === 'PermissionViolationError' || /^permissions violation/i.test(e.message)) {
      return true
    }
  }
  return false
}

/** The connection's own inbox prefix (accounts with permissions on `_INBOX.>` may set one). */
function inboxPrefix(nc: NatsConnection): string | undefined {
  return (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix
}

function lostConnection(session: Session): ConveyorError {
  const server = (session.nc as { getServer?: () => string }).getServer?.() ?? 'the server'
  return new ConveyorError('SOURCE_FAILED', `the NATS connection to ${server} is down`)
}

function oneLine(text: string): string {
  const line = text.replace(/[\r\n]+/g, ' ').trim()
  return line.length > 1000 ? `${line.slice(0, 999)}…` : line || 'failed'
}

/** The server's PONG after everything published so far: it has them. */
async function flush(nc: NatsConnection): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      nc.flush(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new ConveyorError('SOURCE_FAILED', 'NATS did not answer a flush in time')),
          FLUSH_TIMEOUT_MS,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
