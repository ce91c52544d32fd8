import { EventEmitter } from 'node:events'
import { asError, ConveyorError, isConveyorError } from '../errors.js'
import { retryDelay } from '../lane/backoff.js'
import { ENVELOPES } from '../queue/consume.js'
import { EventFence } from '../queue/events.js'
import { sleep } from '../sleep.js'
import type { BrokerAdapter, Delivery } from './adapter.js'
import type { BrokerEnvelope, Source, SourceEvents } from './source.js'
import type { ResolvedSourceOptions } from './source-options.js'

/**
 * The rules every broker source keeps, over one BrokerAdapter (adapter.ts). Each delivery is
 * in exactly one of these places, and moves only forward:
 *
 *   fetched ──► unsettled ──► acking ──► acked at the broker
 *                  │    └──► retried or dead-lettered (the queue gave up on it)
 *                  └──► given back by close() (never acked)
 *
 * - Credit: `unsettled` never holds more than maxInFlight; a fetch asks only for the rest.
 * - An ack is sent only from an envelope's ack(), which the queue calls when the handler
 *   finished the message. A nack for QUEUE_STOPPED (a stopping queue refused the message) is
 *   not a failure: the delivery stays unsettled and close() gives it back.
 * - Leases: every adapter.leaseMs, every unsettled delivery is extended.
 * - A fetch that throws is a disconnect (backoff, fetch again), unless adapter.fatal() says no
 *   reconnect can cure it: then the iteration throws SOURCE_FAILED (consume() rejects with it).
 *   Acks, retries and leases go on for what was fetched, until close().
 * - close(): stops fetching, waits (≤ closeTimeoutMs) for acks and dead letters in flight,
 *   then hands every still unsettled delivery to adapter.close() to give back. An ack or nack
 *   that comes once close() has begun settles nothing: that delivery is given back too.
 */
export class BrokerSource<T, H> extends EventEmitter<SourceEvents<T>> implements Source<T> {
  readonly [ENVELOPES] = true as const
  private readonly fence = new EventFence<SourceEvents<T>>(this)
  private readonly unsettled = new Set<Delivery<H>>()
  private readonly acking: Delivery<H>[] = []
  /** What close() gave back: a later ack of one of them is reported (SOURCE_CLOSED). */
  private readonly givenBack = new WeakSet<Delivery<H>>()
  /** Retries and dead letters in flight: close() waits for them. */
  private readonly operations = new Set<Promise<void>>()
  private readonly closing = new AbortController()
  private ackLoop: Promise<void> | undefined
  private ackTimer: NodeJS.Timeout | undefined
  private leaseTimer: NodeJS.Timeout | undefined
  private extending = false
  private wakeRoom: (() => void) | undefined
  private iterated = false
  private closed: Promise<void> | undefined

  constructor(
    private readonly adapter: BrokerAdapter<H>,
    private readonly options: ResolvedSourceOptions<T>,
  ) {
    super()
    const { leaseMs } = adapter
    if (adapter.extend && leaseMs !== undefined && leaseMs > 0) {
      this.leaseTimer = setInterval(() => this.extendLeases(), leaseMs)
      this.leaseTimer.unref()
    }
  }

  /** Messages fetched and not yet finished, retried or dead-lettered. */
  get inFlight(): number {
    return this.unsettled.size
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<BrokerEnvelope<T>, void, undefined> {
    if (this.iterated) {
      throw new ConveyorError(
        'INVALID_OPTION',
        'a source can be consumed once: create another source for another consume()',
      )
    }
    this.iterated = true
    const { signal } = this.closing
    const buffer: BrokerEnvelope<T>[] = []
    let failures = 0
    while (!signal.aborted) {
      const next = buffer.shift()
      if (next) {
        yield next
        continue
      }
      const room = this.options.maxInFlight - this.unsettled.size
      if (room <= 0) {
        await this.roomOrClose()
        continue
      }
      let deliveries: Delivery<H>[]
      try {
        deliveries = await this.adapter.fetch(room, signal)
      } catch (err) {
        if (signal.aborted) break
        const refused = this.adapter.fatal?.(err)
        if (refused !== undefined) {
          // The broker refuses this configuration: reconnecting would only hide that behind
          // 'disconnect' events. What is in the lanes still settles; close() gives back the rest.
          throw new ConveyorError(
            'SOURCE_FAILED',
            `${refused} (the source stopped: reconnecting would not change this)`,
            { cause: err },
          )
        }
        failures++
        const retryInMs = retryDelay(this.options.reconnect, failures, Math.random)
        this.fence.emit('disconnect', { error: asError(err), attempt: failures, retryInMs })
        await sleep(retryInMs, signal)
        continue
      }
      if (failures > 0) {
        this.fence.emit('reconnect', { attempts: failures })
        failures = 0
      }
      for (const delivery of deliveries) {
        const envelope = this.admit(delivery)
        if (envelope) buffer.push(envelope)
      }
    }
  }

  close(): Promise<void> {
    this.closed ??= this.shutdown()
    return this.closed
  }

  /** A fetched delivery becomes an envelope, or goes straight to the dead letters. */
  private admit(delivery: Delivery<H>): BrokerEnvelope<T> | undefined {
    this.unsettled.add(delivery)
    if (delivery.deliveries > this.options.maxDeliveries) {
      // Delivered more often than it may be without ever failing to us: its consumers died on
      // it (a poison message that kills processes). Don't let it kill this one too.
      this.giveUp(
        delivery,
        undefined,
        new ConveyorError(
          'DELIVERY_LIMIT',
          `message ${delivery.id} was delivered ${delivery.deliveries} times (maxDeliveries ${this.options.maxDeliveries}) without being finished`,
        ),
      )
      return undefined
    }
    let value: T
    let key: string | number | undefined
    try {
      value = this.options.decode(delivery.payload)
      key = this.options.key?.(value)
    } catch (err) {
      this.giveUp(
        delivery,
        undefined,
        new ConveyorError(
          'DECODE_FAILED',
          `message ${delivery.id} could not be decoded: ${asError(err).message}`,
          { cause: err },
        ),
      )
      return undefined
    }
    return {
      value,
      key,
      id: delivery.id,
      deliveries: delivery.deliveries,
      ack: () => this.acked(delivery),
      nack: (error: Error) => this.nacked(delivery, value, error),
    }
  }

  private acked(delivery: Delivery<H>): void {
    if (this.closed) {
      // close() has begun: the delivery stays unsettled for adapter.close() to give back (or
      // was given back already). Acking it now would race that.
      if (this.unsettled.has(delivery) || this.givenBack.has(delivery)) {
        this.fence.error(
          new ConveyorError(
            'SOURCE_CLOSED',
            `message ${delivery.id} finished after close(): it was given back and will be redelivered (close the source only once the queue, and whatever acks its messages, has stopped)`,
          ),
        )
      }
      return
    }
    if (!this.unsettled.delete(delivery)) return
    this.wakeRoom?.()
    this.acking.push(delivery)
    if (this.ackLoop) return
    if (this.acking.length >= this.options.ackBatch) this.sendAcks()
    else this.ackTimer ??= setTimeout(() => this.sendAcks(), this.options.ackIntervalMs)
  }

  private nacked(delivery: Delivery<H>, value: T, error: Error): void {
    // A stopping queue refused it: not the message's failure. close() gives it back.
    if (isConveyorError(error, 'QUEUE_STOPPED')) return
    // After close() began, it stays for adapter.close() to give back, as an ack would.
    if (this.closed || !this.unsettled.has(delivery)) return
    if (delivery.deliveries >= this.options.maxDeliveries) {
      this.giveUp(delivery, value, error)
      return
    }
    this.unsettled.delete(delivery)
    this.wakeRoom?.()
    this.track(
      this.adapter.retry(delivery, error).catch((err) => {
        this.fence.error(
          new ConveyorError(
            'SOURCE_FAILED',
            `message ${delivery.id} failed and could not be handed back to the broker (it will come back when its lease runs out): ${asError(err).message}`,
            { cause: err },
          ),
        )
      }),
    )
  }

  private giveUp(delivery: Delivery<H>, value: T | undefined, error: Error): void {
    this.unsettled.delete(delivery)
    this.wakeRoom?.()
    this.track(
      this.adapter.deadLetter(delivery, error).then(
        () => {
          this.fence.emit('dead-letter', {
            value,
            error,
            deliveries: delivery.deliveries,
            id: delivery.id,
          })
        },
        (err) => {
          this.fence.error(
            new ConveyorError(
              'SOURCE_FAILED',
              `message ${delivery.id} could not be dead-lettered (it stays with the broker and will come back): ${asError(err).message}`,
              { cause: err },
            ),
          )
        },
      ),
    )
  }

  private track(operation: Promise<void>): void {
    this.operations.add(operation)
    void operation.then(() => this.operations.delete(operation))
  }

  /** Sends the acks batch by batch; a failed batch is retried after a backoff. */
  private sendAcks(): void {
    clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    if (this.ackLoop || this.acking.length === 0) return
    this.ackLoop = (async () => {
      let failures = 0
      while (this.acking.length > 0) {
        const batch = this.acking.slice(0, this.options.ackBatch)
        try {
          await this.adapter.ack(batch)
          this.acking.splice(0, batch.length)
          failures = 0
        } catch (err) {
          failures++
          if (this.closing.signal.aborted && failures > 1) break
          this.fence.error(
            new ConveyorError(
              'SOURCE_FAILED',
              `acknowledging ${batch.length} finished messages failed (attempt ${failures}, retrying): ${asError(err).message}`,
              { cause: err },
            ),
          )
          await sleep(
            retryDelay(this.options.reconnect, failures, Math.random),
            this.closing.signal,
          )
        }
      }
    })().finally(() => {
      this.ackLoop = undefined
      // Acks that arrived while the last batch was on its way.
      if (this.acking.length > 0 && !this.closing.signal.aborted) this.sendAcks()
    })
  }

  private extendLeases(): void {
    if (this.extending || this.unsettled.size === 0 || !this.adapter.extend) return
    this.extending = true
    this.adapter
      .extend([...this.unsettled])
      .catch((err) => {
        this.fence.error(
          new ConveyorError(
            'SOURCE_FAILED',
            `extending the leases of ${this.unsettled.size} unfinished messages failed: ${asError(err).message}`,
            { cause: err },
          ),
        )
      })
      .finally(() => {
        this.extending = false
      })
  }

  private roomOrClose(): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.wakeRoom = undefined
        this.closing.signal.removeEventListener('abort', wake)
        resolve()
      }
      this.wakeRoom = wake
      this.closing.signal.addEventListener('abort', wake, { once: true })
    })
  }

  private async shutdown(): Promise<void> {
    this.closing.abort()
    clearInterval(this.leaseTimer)
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), this.options.closeTimeoutMs)
    try {
      // Send what finished: the last acks, with one more try each if the broker failed.
      this.sendAcks()
      const settled = Promise.all([this.ackLoop, ...this.operations])
      await Promise.race([settled, sleep(this.options.closeTimeoutMs, deadline.signal)])
    } finally {
      clearTimeout(timer)
      deadline.abort()
    }
    if (this.acking.length > 0) {
      this.fence.error(
        new ConveyorError(
          'SOURCE_FAILED',
          `close(): ${this.acking.length} finished messages could not be acknowledged in time: the broker will deliver them again`,
        ),
      )
    }
    const unfinished = [...this.unsettled]
    this.unsettled.clear()
    for (const delivery of unfinished) this.givenBack.add(delivery)
    await this.adapter.close(unfinished)
  }
}
