import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Message,
  type RecoveringChannelModel,
} from 'amqplib'
import { sleep, waitFor as wait } from '../../support/wait.js'
import { uniqueName } from '../support/brokers.js'

/** The shared RabbitMQ every test uses (never stopped by a test: names are unique, deleted after). */
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672'

export const fixture = (name: string) =>
  fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

export { sleep }

export const waitFor = (
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> => wait(condition, what, { timeoutMs, pollMs: 10 })

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

  /**
   * Waits (≤ 10 s) until the queue holds `count` ready messages. A quorum queue applies acks and
   * dead letters a moment after they were sent: its count lags behind them.
   */
  async waitForDepth(queue: string, count: number): Promise<void> {
    let depth = -1
    await waitFor(
      async () => (depth = await this.depth(queue)) === count,
      `${count} messages in ${queue} (${depth} now)`,
      10_000,
    ).catch((err) => {
      throw new Error(`${err.message}: ${depth} messages in ${queue}, expected ${count}`)
    })
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

/**
 * A TCP proxy in the test process between a source and RabbitMQ: cut() destroys every
 * connection through it (both sides: RabbitMQ sees the client go, and requeues its unacked
 * messages), refuse(ms) turns new connections away for a while. The connection loss a source
 * meets in production, without stopping the broker everyone shares.
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>()
  private refusing = false
  cuts = 0

  private constructor(private readonly server: Server) {}

  static async start(target = { host: '127.0.0.1', port: 5672 }): Promise<TcpProxy> {
    const server = createServer()
    const proxy = new TcpProxy(server)
    server.on('connection', (client) => {
      if (proxy.refusing) {
        client.destroy()
        return
      }
      const upstream = connect(target)
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        proxy.sockets.add(a)
        a.on('error', () => b.destroy())
        a.on('close', () => {
          proxy.sockets.delete(a)
          b.destroy()
        })
        a.pipe(b)
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return proxy
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo
    return `amqp://guest:guest@127.0.0.1:${port}`
  }

  /** Severs every connection through the proxy, and refuses new ones for `refuseMs`. */
  cut(refuseMs = 0): void {
    this.cuts++
    if (refuseMs > 0) {
      this.refusing = true
      setTimeout(() => {
        this.refusing = false
      }, refuseMs)
    }
    for (const socket of this.sockets) socket.destroy()
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

/**
 * Wraps a connection so that every channel the source opens on it is watched: each delivery's
 * tag and message id, and each ack, checked as RabbitMQ would and more — a tag settled twice,
 * a multiple=true ack covering a message whose handler has not returned (`finished(id)` false
 * at the ack), an ack on a closed channel. Pass `spy.model` as amqpSource's connection.
 */
export function spyOn(
  connection: ChannelModel | RecoveringChannelModel,
  finished: (id: number) => boolean,
) {
  const violations: string[] = []
  /** ack frames (multiple / single), tags acked, reject and nack frames, channels opened. */
  const counts = { multiples: 0, singles: 0, acked: 0, rejected: 0, nacked: 0, channels: 0 }
  const watch = <C extends Channel>(channel: C): C => {
    const number = ++counts.channels
    const tagToId = new Map<number, number>()
    const unsettled = new Set<number>()
    const settle = (tag: number) => {
      const id = tagToId.get(tag)
      if (!unsettled.delete(tag)) violations.push(`channel ${number}: tag ${tag} settled twice`)
      else if (++counts.acked && !finished(id!)) {
        violations.push(`channel ${number}: message ${id} acked before its handler returned`)
      }
    }
    const consume = channel.consume.bind(channel)
    channel.consume = (queue, onMessage, options) =>
      consume(
        queue,
        (message: ConsumeMessage | null) => {
          if (message) {
            tagToId.set(message.fields.deliveryTag, Number(message.properties.messageId))
            unsettled.add(message.fields.deliveryTag)
          }
          onMessage(message)
        },
        options,
      )
    const ack = channel.ack.bind(channel)
    channel.ack = (message, allUpTo) => {
      const tag = message.fields.deliveryTag
      if (allUpTo) {
        counts.multiples++
        for (const t of [...unsettled]) if (t <= tag) settle(t)
      } else {
        counts.singles++
        settle(tag)
      }
      ack(message, allUpTo)
    }
    const nack = channel.nack.bind(channel)
    channel.nack = (message: Message, allUpTo?: boolean, requeue?: boolean) => {
      counts.nacked++
      unsettled.delete(message.fields.deliveryTag)
      nack(message, allUpTo, requeue)
    }
    const reject = channel.reject.bind(channel)
    channel.reject = (message: Message, requeue?: boolean) => {
      counts.rejected++
      unsettled.delete(message.fields.deliveryTag)
      reject(message, requeue)
    }
    channel.on('close', () => unsettled.clear())
    return channel
  }
  const model = {
    createChannel: async () => watch(await connection.createChannel()),
    createConfirmChannel: async () => watch(await connection.createConfirmChannel()),
    on: connection.on.bind(connection),
  } as unknown as ChannelModel
  return { model, violations, counts }
}
