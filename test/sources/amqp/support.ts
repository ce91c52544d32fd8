import { fileURLToPath } from 'node:url'
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib'
import { uniqueName } from '../support/brokers.js'

/** The shared RabbitMQ every test uses (never stopped by a test: names are unique, deleted after). */
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672'

export const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = performance.now() + timeoutMs
  while (!(await condition())) {
    if (performance.now() > until) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
    await sleep(10)
  }
}

/**
 * The test's own side of RabbitMQ: declares a queue the way amqpSource() does, publishes to it
 * (with publisher confirms), counts and reads what is left, and deletes everything after.
 */
export class Rabbit {
  private readonly names: string[] = []

  private constructor(
    readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
  ) {}

  static async open(): Promise<Rabbit> {
    const connection = await amqp.connect(AMQP_URL)
    const channel = await connection.createConfirmChannel()
    return new Rabbit(connection, channel)
  }

  /** A fresh queue name, declared (with its dead-letter exchange and queue) as the source does. */
  async queue(prefix: string, type: 'quorum' | 'classic' = 'quorum'): Promise<string> {
    const name = uniqueName(prefix)
    this.names.push(name)
    await this.channel.assertExchange(`${name}.dlx`, 'direct', { durable: true })
    await this.channel.assertQueue(`${name}.dead`, { durable: true })
    await this.channel.bindQueue(`${name}.dead`, `${name}.dlx`, name)
    await this.channel.assertQueue(name, {
      durable: true,
      arguments: {
        'x-queue-type': type,
        'x-dead-letter-exchange': `${name}.dlx`,
        'x-dead-letter-routing-key': name,
      },
    })
    return name
  }

  /** A name for a queue the source itself declares (deleted after, with its dead letters). */
  name(prefix: string): string {
    const name = uniqueName(prefix)
    this.names.push(name)
    return name
  }

  /** Publishes JSON bodies (or raw Buffers), each with a messageId, and waits for the confirms. */
  async publish(queue: string, bodies: unknown[]): Promise<void> {
    for (let i = 0; i < bodies.length; i++) {
      const body = bodies[i]
      const content = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
      const id = (body as { id?: unknown })?.id
      const messageId = id === undefined ? undefined : String(id)
      if (!this.channel.sendToQueue(queue, content, { persistent: true, messageId })) {
        await new Promise((resolve) => this.channel.once('drain', resolve))
      }
      if (i % 2000 === 1999) await this.channel.waitForConfirms()
    }
    await this.channel.waitForConfirms()
  }

  /** Messages ready in the queue (not counting those delivered and unacked). */
  async depth(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount
  }

  /** Takes every ready message off the queue (acking them): their JSON bodies and headers. */
  async takeAll(
    queue: string,
  ): Promise<{ body: unknown; raw: Buffer; headers: Record<string, unknown> }[]> {
    const taken = []
    for (;;) {
      const message = await this.channel.get(queue, { noAck: true })
      if (!message) return taken
      let body: unknown
      try {
        body = JSON.parse(message.content.toString())
      } catch {
        body = undefined
      }
      taken.push({ body, raw: message.content, headers: message.properties.headers ?? {} })
    }
  }

  async close(): Promise<void> {
    for (const name of this.names) {
      await this.channel.deleteQueue(name).catch(() => {})
      await this.channel.deleteQueue(`${name}.dead`).catch(() => {})
      await this.channel.deleteExchange(`${name}.dlx`).catch(() => {})
    }
    await this.connection.close().catch(() => {})
  }
}

/** Shared-memory counters per message id, read live while workers write them. */
export class Counters {
  readonly buffer: SharedArrayBuffer
  readonly view: Int32Array
  constructor(size: number) {
    this.buffer = new SharedArrayBuffer(4 * (size + 1))
    this.view = new Int32Array(this.buffer)
  }
  get(id: number): number {
    return Atomics.load(this.view, id)
  }
  total(): number {
    let sum = 0
    for (let i = 0; i < this.view.length; i++) sum += Atomics.load(this.view, i)
    return sum
  }
}
