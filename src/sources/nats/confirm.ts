import type { NatsConnection, Subscription } from '@nats-io/transport-node'
import { ConveyorError } from '../../errors.js'

/**
 * Acks JetStream confirms: each `+ACK` (or `-NAK`, `+TERM`) is published with a reply subject,
 * and the server answers once the consumer applied it. A flush (PING/PONG) would only say the
 * server received the bytes: a server shutting down answers PINGs after its JetStream stopped
 * applying acks, and those messages come back after ack_wait although their handlers finished.
 *
 * All answers come to one subscription, `<inbox>.<batch>`, each batch with its own subject; a
 * batch waits for all of its answers, or fails (and the source sends it again) after
 * `timeoutMs`, on a 503 (no consumer listening: JetStream is down or moving) or when the
 * connection drops.
 */
interface Batch {
  /** Answers still to come. */
  remaining: number
  confirmed: number
  done: () => void
}

export class Confirmations {
  private readonly sub: Subscription
  private readonly prefix: string
  private nextBatch = 1
  private readonly waiting = new Map<string, Batch>()

  constructor(
    private readonly nc: NatsConnection,
    inbox: string,
    private readonly timeoutMs: number,
  ) {
    this.prefix = `${inbox}.`
    this.sub = nc.subscribe(`${inbox}.*`, {
      callback: (err, msg) => {
        if (err) return this.failAll()
        const batch = this.waiting.get(msg.subject.slice(this.prefix.length))
        if (!batch) return
        // A status (503 no responders) is no confirmation: nobody applied it.
        if (!(msg.headers && msg.headers.code >= 300)) batch.confirmed++
        if (--batch.remaining === 0) batch.done()
      },
    })
  }

  /** Publishes `payload` to each ack subject; resolves once the server confirmed every one. */
  async send(replies: readonly string[], payload: string, what: string): Promise<void> {
    // One reply subject for the batch: the server answers each message to it.
    const token = String(this.nextBatch++)
    const reply = `${this.prefix}${token}`
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const batch: Batch = { remaining: replies.length, confirmed: 0, done: () => {} }
    const answered = new Promise<void>((resolve) => {
      batch.done = resolve
      timer = setTimeout(() => {
        timedOut = true
        resolve()
      }, this.timeoutMs)
    })
    this.waiting.set(token, batch)
    try {
      for (const subject of replies) this.nc.publish(subject, payload, { reply })
      await answered
    } finally {
      clearTimeout(timer)
      this.waiting.delete(token)
    }
    if (batch.confirmed < replies.length) {
      throw new ConveyorError(
        'SOURCE_FAILED',
        `JetStream confirmed ${batch.confirmed} of ${replies.length} ${what}${timedOut ? ` within ${this.timeoutMs} ms` : ''}`,
      )
    }
  }

  /** The connection dropped: no answer on the way will come. */
  failAll(): void {
    const batches = [...this.waiting.values()]
    this.waiting.clear()
    for (const batch of batches) batch.done()
  }

  close(): void {
    this.failAll()
    if (!this.sub.isClosed() && !this.nc.isClosed()) this.sub.unsubscribe()
  }
}
