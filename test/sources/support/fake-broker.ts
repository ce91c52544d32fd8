import type { BrokerAdapter, Delivery } from '../../../dist/src/sources/index.js'

/**
 * An in-memory broker behind the BrokerAdapter contract, for the BrokerSource tests: a list
 * of ready messages, deliveries handed out by fetch(max) (never more than max), and a log of
 * every call. It keeps the rules a real broker would enforce and records each breach instead
 * of throwing (a throw would only be retried): a delivery settled twice, a message acked
 * twice, an ack the check refuses (checkAck: e.g. "its handler has not finished"), a fetch
 * past the source's credit.
 */
export interface FakeMessage {
  id: number
  payload: Buffer
  /** Deliveries so far (the next one is deliveries + 1). */
  deliveries: number
}

export type Settlement = 'acked' | 'retried' | 'dead' | 'given back'

/** What the fake broker throws for a configuration it refuses: fatal() says no reconnect cures it. */
export class Refusal extends Error {
  override name = 'Refusal'
}

export interface FetchRecord {
  max: number
  inFlight: number
  outcome: 'ok' | 'failed' | 'aborted'
  count: number
}

export class FakeBroker implements BrokerAdapter<number> {
  readonly ready: FakeMessage[] = []
  /** Handed out and not settled: delivery seq → its message and delivery. */
  readonly out = new Map<number, { message: FakeMessage; delivery: Delivery<number> }>()
  /** Every delivery ever handed out, by seq, with how it ended. */
  readonly settled = new Map<number, Settlement>()
  readonly handedOut: Delivery<number>[] = []
  readonly acks = new Map<number, number>()
  readonly dead: { id: number; error: Error; deliveries: number }[] = []
  readonly retried: { id: number; deliveries: number; error: Error }[] = []
  readonly fetches: FetchRecord[] = []
  readonly ackCalls: { seqs: number[]; failed: boolean }[] = []
  readonly extended: number[][] = []
  readonly breaches: string[] = []
  closeCalls: Delivery<number>[][] = []
  failFetches = 0
  /**
   * Once nothing is ready (and failFetches are spent), fetches throw this: a configuration the
   * broker refuses, which fatal() reports as such.
   */
  refuse: Refusal | undefined
  failAcks = 0
  /** Fetches that never answer (a dead connection), for the close-is-bounded test. */
  hangFetches = false
  /** While set, ack() waits for it before acking (a slow round trip). */
  ackGate: Promise<void> | undefined
  /** The source's inFlight, read at each call (set by the test). */
  inFlight: () => number = () => 0
  maxInFlight = Number.POSITIVE_INFINITY
  /** Called for each acked message id: return a breach to record, or undefined. */
  checkAck: (id: number) => string | undefined = () => undefined
  leaseMs: number | undefined
  private seq = 0
  private arrived: (() => void) | undefined
  private readonly byId = new Map<number, FakeMessage>()

  constructor(options: { leaseMs?: number; fetchWaitMs?: number } = {}) {
    this.leaseMs = options.leaseMs
    this.fetchWaitMs = options.fetchWaitMs ?? 10
    if (options.leaseMs === undefined) this.extend = undefined
  }

  private readonly fetchWaitMs: number

  /** Publishes messages: they are ready for the next fetches. */
  add(...messages: { id: number; payload: Buffer; deliveries?: number }[]): void {
    for (const m of messages) {
      const message = { id: m.id, payload: m.payload, deliveries: m.deliveries ?? 0 }
      this.byId.set(m.id, message)
      this.ready.push(message)
    }
    this.arrived?.()
  }

  message(id: number): FakeMessage | undefined {
    return this.byId.get(id)
  }

  /** Every call after close() is a breach: the adapter is closed, its broker gone. */
  private open(what: string) {
    if (this.closeCalls.length > 0) this.breaches.push(`${what} after close()`)
  }

  async fetch(max: number, signal: AbortSignal): Promise<Delivery<number>[]> {
    this.open('fetch')
    const inFlight = this.inFlight()
    if (!(max >= 1) || inFlight + max > this.maxInFlight) {
      this.breaches.push(
        `fetch(${max}) with ${inFlight} in flight (maxInFlight ${this.maxInFlight})`,
      )
    }
    if (this.hangFetches) return new Promise(() => {})
    if (this.failFetches > 0 && !signal.aborted) {
      this.failFetches--
      this.fetches.push({ max, inFlight, outcome: 'failed', count: 0 })
      throw new Error('fetch failed: connection refused')
    }
    if (this.refuse && this.ready.length === 0 && !signal.aborted) {
      this.fetches.push({ max, inFlight, outcome: 'failed', count: 0 })
      throw this.refuse
    }
    if (this.ready.length === 0 && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer)
          signal.removeEventListener('abort', done)
          this.arrived = undefined
          resolve()
        }
        const timer = setTimeout(done, this.fetchWaitMs)
        signal.addEventListener('abort', done, { once: true })
        this.arrived = done
      })
    }
    if (signal.aborted) {
      this.fetches.push({ max, inFlight, outcome: 'aborted', count: 0 })
      return []
    }
    const taken = this.ready.splice(0, max)
    const deliveries = taken.map((message) => {
      message.deliveries++
      const delivery: Delivery<number> = {
        handle: ++this.seq,
        id: String(message.id),
        payload: message.payload,
        deliveries: message.deliveries,
      }
      this.out.set(delivery.handle, { message, delivery })
      this.handedOut.push(delivery)
      return delivery
    })
    this.fetches.push({ max, inFlight, outcome: 'ok', count: deliveries.length })
    return deliveries
  }

  fatal(error: unknown): string | undefined {
    return error instanceof Refusal
      ? `the fake broker refused: ${error.message}: change the fake's configuration`
      : undefined
  }

  /** Takes a handed-out delivery off `out`, or records the breach. */
  private settle(delivery: Delivery<number>, how: Settlement) {
    const entry = this.out.get(delivery.handle)
    const before = this.settled.get(delivery.handle)
    if (!entry || before) {
      this.breaches.push(
        `delivery ${delivery.handle} (message ${delivery.id}) ${how} after ${before ?? 'never handed out'}`,
      )
      return undefined
    }
    this.out.delete(delivery.handle)
    this.settled.set(delivery.handle, how)
    return entry.message
  }

  private checkInFlight(what: string) {
    const inFlight = this.inFlight()
    if (inFlight > this.maxInFlight) {
      this.breaches.push(`${what}: ${inFlight} in flight (maxInFlight ${this.maxInFlight})`)
    }
  }

  async ack(deliveries: readonly Delivery<number>[]): Promise<void> {
    this.open('ack')
    this.checkInFlight('ack')
    const seqs = deliveries.map((d) => d.handle)
    if (this.failAcks > 0) {
      this.failAcks--
      this.ackCalls.push({ seqs, failed: true })
      throw new Error('ack failed: connection reset')
    }
    this.ackCalls.push({ seqs, failed: false })
    if (this.ackGate) await this.ackGate
    for (const delivery of deliveries) {
      const message = this.settle(delivery, 'acked')
      if (!message) continue
      const breach = this.checkAck(message.id)
      if (breach) this.breaches.push(breach)
      const acks = (this.acks.get(message.id) ?? 0) + 1
      this.acks.set(message.id, acks)
      if (acks > 1) this.breaches.push(`message ${message.id} acked ${acks} times`)
    }
  }

  async retry(delivery: Delivery<number>, error: Error): Promise<void> {
    this.open('retry')
    this.checkInFlight('retry')
    const message = this.settle(delivery, 'retried')
    if (!message) return
    this.retried.push({ id: message.id, deliveries: delivery.deliveries, error })
    this.ready.push(message)
    this.arrived?.()
  }

  async deadLetter(delivery: Delivery<number>, error: Error): Promise<void> {
    this.open('dead letter')
    this.checkInFlight('dead letter')
    const message = this.settle(delivery, 'dead')
    if (!message) return
    this.dead.push({ id: message.id, error, deliveries: delivery.deliveries })
  }

  extend: ((deliveries: readonly Delivery<number>[]) => Promise<void>) | undefined = async (
    deliveries,
  ) => {
    this.open('extend')
    this.extended.push(deliveries.map((d) => d.handle))
    for (const d of deliveries) {
      if (!this.out.has(d.handle)) {
        this.breaches.push(
          `extend of delivery ${d.handle} (message ${d.id}), ${this.settled.get(d.handle) ?? 'never handed out'}`,
        )
      }
    }
  }

  async close(unfinished: readonly Delivery<number>[]): Promise<void> {
    this.open('close')
    this.closeCalls.push([...unfinished])
    for (const delivery of unfinished) {
      const message = this.settle(delivery, 'given back')
      if (message) this.ready.push(message)
    }
  }
}
