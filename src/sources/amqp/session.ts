import type { Channel, ConfirmChannel, ConsumeMessage, Message } from 'amqplib'
import { ConveyorError } from '../../errors.js'

/**
 * Which acks of a batch one `basic.ack multiple=true` can carry: the batch's tags below the
 * channel's lowest unsettled tag that is not in the batch (everything up to there is settled
 * once these are), when there are two or more of them; the other tags go one by one. A
 * `multiple` ack never covers a tag that is still unfinished, and never one already settled
 * (RabbitMQ acks only outstanding tags up to it).
 */
export function planAcks(
  outstanding: ReadonlySet<number>,
  tags: readonly number[],
): { upTo: number | undefined; singles: number[] } {
  const batch = new Set(tags)
  let lowest = Number.POSITIVE_INFINITY
  for (const tag of outstanding) if (tag < lowest && !batch.has(tag)) lowest = tag
  let upTo: number | undefined
  let covered = 0
  for (const tag of batch) {
    if (tag < lowest) {
      covered++
      if (upTo === undefined || tag > upTo) upTo = tag
    }
  }
  if (covered < 2) return { upTo: undefined, singles: [...batch] }
  return { upTo, singles: [...batch].filter((tag) => tag > lowest) }
}

/** What amqplib's ack/nack read of a message: its delivery tag. */
const byTag = (deliveryTag: number) => ({ fields: { deliveryTag } }) as unknown as Message

/**
 * One channel and its consumer. Delivery tags belong to the channel that delivered them: once
 * it is gone (closed by us, by RabbitMQ, or with its connection) RabbitMQ has put its unacked
 * messages back in the queue, and settling its tags on another channel would be a channel
 * error. So every settlement names its session, and a dead session's are dropped.
 */
export class Session {
  alive = true
  /** Why the channel went away (the first reason heard). */
  error: Error | undefined
  /** Delivered on this channel and not yet acked, rejected or nacked: buffered or handed out. */
  readonly outstanding = new Set<number>()
  /** Delivered, not yet handed out by fetch(). */
  readonly buffer: ConsumeMessage[] = []
  /** The consumer's tag, once consuming. */
  consumerTag: string | undefined
  /** Whether fetch() has thrown `error` (so the source reported the loss). */
  reported = false
  private wake: (() => void) | undefined

  constructor(
    readonly id: number,
    readonly channel: Channel | ConfirmChannel,
  ) {}

  /** The consumer's callback: a delivery, or null when RabbitMQ cancelled the consumer. */
  deliver(message: ConsumeMessage | null): void {
    if (!this.alive) return
    if (message === null) {
      this.lost(new Error('RabbitMQ cancelled the consumer (was the queue deleted?)'))
      void this.channel.close().catch(() => {})
      return
    }
    this.outstanding.add(message.fields.deliveryTag)
    this.buffer.push(message)
    this.wake?.()
  }

  /** The channel is gone: nothing of it may be settled any more; RabbitMQ requeued it all. */
  lost(error: Error): void {
    if (!this.alive) return
    this.alive = false
    this.error = new ConveyorError('SOURCE_FAILED', `RabbitMQ channel lost: ${error.message}`, {
      cause: error,
    })
    this.buffer.length = 0
    this.outstanding.clear()
    this.wake?.()
  }

  /**
   * Waits until a delivery is buffered (then one more turn, for the rest of its burst), the
   * channel is lost, `signal` aborts, or `ms` pass.
   */
  waitForDeliveries(signal: AbortSignal, ms: number): Promise<void> {
    if (this.buffer.length > 0 || !this.alive || signal.aborted) return Promise.resolve()
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
      this.wake = () => {
        this.wake = undefined
        setImmediate(done)
      }
    })
  }

  take(max: number): ConsumeMessage[] {
    return this.buffer.splice(0, max)
  }

  /** Acks these tags, in as few frames as is safe. Dead channel: dropped (they come again). */
  ack(tags: readonly number[]): void {
    const live = tags.filter((tag) => this.outstanding.has(tag))
    if (!this.alive) return
    const { upTo, singles } = planAcks(this.outstanding, live)
    try {
      if (upTo !== undefined) this.channel.ack(byTag(upTo), true)
      for (const tag of singles) this.channel.ack(byTag(tag), false)
    } catch (err) {
      // amqplib throws once the channel is closing or closed: the rest never reaches RabbitMQ.
      this.lost(err as Error)
      return
    }
    for (const tag of live) this.outstanding.delete(tag)
    if (upTo !== undefined) {
      for (const tag of this.outstanding) if (tag <= upTo) this.outstanding.delete(tag)
    }
  }

  /**
   * Never rejects. Publishes a copy of `message` to `queue` carrying `headers`, waits for RabbitMQ to confirm
   * it, then acks the original: a classic queue's way to count deliveries. A crash in between
   * leaves both (at least once). false: no copy was confirmed; the original comes again.
   */
  async republish(
    message: ConsumeMessage,
    queue: string,
    headers: Record<string, unknown>,
  ): Promise<boolean> {
    const tag = message.fields.deliveryTag
    if (!this.alive || !this.outstanding.has(tag)) return false
    // The original's properties, but user-id: RabbitMQ checks it against this connection's user.
    const { userId: _userId, headers: original, ...properties } = message.properties
    const channel = this.channel as ConfirmChannel
    try {
      await new Promise<void>((resolve, reject) => {
        channel.sendToQueue(
          queue,
          message.content,
          { ...properties, headers: { ...original, ...headers } },
          (err: unknown) => (err ? reject(err) : resolve()),
        )
      })
    } catch {
      // Not confirmed (channel lost, or RabbitMQ refused the copy): the original goes back.
      this.reject(tag, true)
      return false
    }
    if (!this.alive || !this.outstanding.has(tag)) return false
    this.ack([tag])
    return true
  }

  /** Back to the queue as a failed delivery (counted), or to the dead-letter exchange. */
  reject(tag: number, requeue: boolean): boolean {
    if (!this.alive || !this.outstanding.has(tag)) return false
    try {
      // basic.reject counts as a failed delivery on every RabbitMQ (4.3 counts no nack requeue).
      if (requeue) this.channel.reject(byTag(tag), true)
      else this.channel.nack(byTag(tag), false, false)
    } catch (err) {
      this.lost(err as Error)
      return false
    }
    this.outstanding.delete(tag)
    return true
  }
}
