import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node'
import { ConveyorError } from '../../errors.js'
import type { Delivery } from '../adapter.js'
import { parseAckSubject } from './subjects.js'

/** What the source keeps of a JetStream message: enough to ack, extend, retry or dead-letter it. */
export interface NatsHandle {
  /** The subject it was published on. */
  readonly subject: string
  /** Its ack subject (`$JS.ACK.…`): acks, extensions, naks and terms are published there. */
  readonly reply: string
  /** Its sequence in the stream. */
  readonly sequence: number
  readonly headers: MsgHdrs | undefined
}

export type NatsDelivery = Delivery<NatsHandle>

/** JetStream ended a pull request with a status other than "expired" or "no messages". */
export class PullStatusError extends ConveyorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SOURCE_FAILED', message, options)
  }
}

/**
 * The server refused this connection a pull's publish or its inbox subscription. No answer
 * comes to such a request: the server says so only on the connection (-ERR), so fetch() would
 * wait out each request's expiry and ask again, forever and without a word.
 */
export class PullRefusedError extends ConveyorError {
  constructor(cause: Error) {
    super('SOURCE_FAILED', `a pull request was refused: ${cause.message}`, { cause })
  }
}

interface OpenRequest {
  /** Messages this pull request may still bring. */
  remaining: number
  timer: NodeJS.Timeout | undefined
  /** Its own inbox subscription: a JetStream message names its stream subject, not the inbox. */
  sub: Subscription | undefined
  inbox: string
  ended: boolean
}

export interface PullConfig {
  /** `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` */
  nextSubject: string
  inbox: () => string
  expiresMs: number
  /** The consumer's max_batch, if any: no request asks for more. */
  maxBatch: number
  /** With requests outstanding, a new one is sent only for at least this many. */
  threshold: number
  /** Gives a message back at once (`-NAK`): it came for a request this side had written off. */
  giveBack: (reply: string) => void
}

/** After a pull request's expiry, how long its answer (a 408) may take before it is written off. */
const EXPIRY_GRACE_MS = 2000

/**
 * Pull requests on one connection, credit-based: the messages asked for and not yet arrived
 * (`outstanding`) plus those arrived and not yet taken never exceed the `max` of the latest
 * fetch. A request that brings some messages at once stays open on the server for the rest,
 * and counts against the next fetch; a new request asks only for what is left of `max`.
 *
 * Each request has its own inbox subscription, so its messages are counted exactly; it is
 * unsubscribed when the request is filled or ends (408 expired, 409…). When the connection
 * drops, every request is written off with its subscription (the server forgets a request
 * whose inbox nobody subscribes to). A message that still comes for a written-off request
 * is given back at once.
 */
export class PullRequests {
  private readonly open = new Set<OpenRequest>()
  /** The inboxes of open requests: a refused subscription names one. */
  private readonly inboxes = new Set<string>()
  private outstanding = 0
  private readonly arrived: NatsDelivery[] = []
  private wake: (() => void) | undefined
  /** The connection is down: fetches throw this until it is back. */
  private down: Error | undefined
  /** A status that ended a request and should be reported (thrown once by fetch). */
  private failure: Error | undefined
  private stopped = false

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: PullConfig,
  ) {}

  /**
   * Up to `max` messages: what has arrived, else waits for some (topping the requests up to
   * `max`). Answers [] at once when `signal` aborts (what arrives later waits for stop()).
   */
  async fetch(max: number, signal: AbortSignal): Promise<NatsDelivery[]> {
    for (;;) {
      if (signal.aborted || this.stopped) return []
      if (this.arrived.length > 0) return this.arrived.splice(0, max)
      if (this.failure) {
        const failure = this.failure
        this.failure = undefined
        throw failure
      }
      if (this.down) throw this.down
      this.topUp(max)
      await this.event(signal)
    }
  }

  /** What arrived and was not taken: the caller gives it back. */
  takeArrived(): NatsDelivery[] {
    return this.arrived.splice(0)
  }

  /** The connection dropped: every open request is gone with it. */
  lost(error: Error): void {
    this.down = error
    for (const request of [...this.open]) this.end(request, 'unsubscribe')
    this.notify()
  }

  /** The connection is back: the next fetch sends new requests. */
  restored(): void {
    this.down = undefined
    this.notify()
  }

  /**
   * Stops pulling: unsubscribes every open request (waiting for what the server sent before
   * it heard so: those are given back) and returns what arrived and was not taken.
   */
  async stop(): Promise<NatsDelivery[]> {
    this.stopped = true
    const how = this.down ? 'unsubscribe' : 'drain'
    const draining = [...this.open].map((request) => this.end(request, how))
    if (!this.nc.isClosed()) await Promise.race([Promise.all(draining), this.nc.closed()])
    this.notify()
    return this.takeArrived()
  }

  private topUp(max: number): void {
    let want = max - this.arrived.length - this.outstanding
    if (want <= 0) return
    // Requests are out: they bring messages as soon as there are some. Ask for more only when
    // it is worth a request (many tiny requests would each cost the server a round).
    if (this.outstanding > 0 && want < this.config.threshold) return
    want = Math.min(want, this.config.maxBatch)
    const inbox = this.config.inbox()
    const request: OpenRequest = {
      remaining: want,
      timer: undefined,
      sub: undefined,
      inbox,
      ended: false,
    }
    this.inboxes.add(inbox)
    this.open.add(request)
    this.outstanding += want
    try {
      request.sub = this.nc.subscribe(inbox, {
        callback: (err, msg) => this.receive(request, err, msg),
      })
      this.nc.publish(
        this.config.nextSubject,
        JSON.stringify({ batch: want, expires: this.config.expiresMs * 1_000_000 }),
        { reply: inbox },
      )
    } catch (err) {
      this.end(request, 'unsubscribe')
      throw err
    }
    // The server answers an expired request with a 408; without one, write it off anyway.
    request.timer = setTimeout(
      () => void this.end(request, 'drain'),
      this.config.expiresMs + EXPIRY_GRACE_MS,
    )
    request.timer.unref()
  }

  /**
   * The connection reported a permissions violation: when it names this side's pull subject
   * (or one of its inboxes), the pulls cannot work, and the next fetch() says so.
   */
  refused(violation: Error & { subject?: string }): void {
    const { subject } = violation
    if (subject !== this.config.nextSubject && !this.inboxes.has(subject ?? '')) return
    this.failure ??= new PullRefusedError(violation)
    for (const request of [...this.open]) this.end(request, 'unsubscribe')
    this.notify()
  }

  private receive(request: OpenRequest, err: Error | null, msg: Msg): void {
    if (err) {
      this.end(request, 'unsubscribe')
      this.failure ??=
        err.name === 'PermissionViolationError'
          ? new PullRefusedError(err)
          : new PullStatusError(`a pull request failed: ${err.message}`, { cause: err })
      return
    }
    if (msg.reply?.startsWith('$JS.ACK.')) {
      if (request.ended) {
        // Its credit was already written off: don't hold more than asked for.
        this.config.giveBack(msg.reply)
        return
      }
      request.remaining--
      this.outstanding--
      this.arrived.push(toDelivery(msg))
      if (request.remaining === 0) this.end(request, 'unsubscribe')
      this.notify()
      return
    }
    const code = msg.headers?.code ?? 0
    // 100: an idle heartbeat (not asked for); anything else ends the request.
    if (code === 100) return
    const ended = request.ended
    this.end(request, 'unsubscribe')
    // 404 no messages, 408 expired: ask again. Other statuses (409 consumer deleted or
    // reconfigured, 400, 503) are worth a report and a fresh look at the consumer.
    if (code !== 404 && code !== 408 && !ended && !this.stopped) {
      this.failure ??= new PullStatusError(
        `JetStream answered a pull request with ${code} ${msg.headers?.description ?? ''}`.trim(),
      )
    }
  }

  /** Writes a request's credit off and ends its subscription (`drain`: late messages still come). */
  private end(request: OpenRequest, how: 'drain' | 'unsubscribe'): Promise<void> {
    const { sub } = request
    if (!request.ended) {
      request.ended = true
      clearTimeout(request.timer)
      this.open.delete(request)
      this.inboxes.delete(request.inbox)
      this.outstanding -= request.remaining
      request.remaining = 0
      this.notify()
    }
    request.sub = undefined
    if (!sub || sub.isClosed() || this.nc.isClosed()) return Promise.resolve()
    if (how === 'unsubscribe') {
      sub.unsubscribe()
      return Promise.resolve()
    }
    return sub.drain().catch(() => {})
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private event(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.wake = done
      signal.addEventListener('abort', done, { once: true })
    })
  }
}

function toDelivery(msg: Msg): NatsDelivery {
  const ack = parseAckSubject(msg.reply ?? '')
  const sequence = ack?.streamSequence ?? 0
  return {
    handle: { subject: msg.subject, reply: msg.reply ?? '', sequence, headers: msg.headers },
    id: String(sequence),
    // A copy: the client's view points into the socket's read buffer.
    payload: Buffer.from(msg.data),
    deliveries: Math.max(1, ack?.deliveries ?? 1),
  }
}
