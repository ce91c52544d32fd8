import { createRequire } from 'node:module'
import type { Redis, RedisOptions } from 'ioredis'
import { ConveyorError } from '../../errors.js'
import { isRedisClient } from './options.js'

const MISSING =
  "conveyor-lanes/sources/redis needs the 'ioredis' package to connect: npm install ioredis"

type RedisConstructor = new (...args: [string, RedisOptions] | [RedisOptions]) => Redis

let RedisClass: RedisConstructor | undefined

/**
 * ioredis's Redis class, loaded (once) by the first source that opens its own connections:
 * importing `conveyor-lanes/sources/redis` alone does not load it, and `conveyor-lanes` never
 * does. A source on a client you made never needs it. Throws, saying what to install, when the
 * package is missing.
 */
export function loadIoredis(): RedisConstructor {
  if (RedisClass) return RedisClass
  try {
    const module = createRequire(import.meta.url)('ioredis') as {
      Redis?: RedisConstructor
      default?: RedisConstructor
    }
    RedisClass = module.Redis ?? module.default ?? (module as unknown as RedisConstructor)
  } catch (err) {
    throw new ConveyorError('PEER_MISSING', MISSING, { cause: err })
  }
  return RedisClass
}

/**
 * The reading connection's settings, over the user's: a command in flight when the connection
 * drops fails at once (instead of being sent again after the reconnect, which would deliver
 * entries to nobody), so fetch() throws and the source reports the disconnect; commands sent
 * while it reconnects wait for it (or for the next failure).
 */
const READER: Partial<RedisOptions> = {
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  enableOfflineQueue: true,
  lazyConnect: false,
}

const ignore = () => {}

/**
 * The two connections of one source, opened on first use: `command` for acks, lease
 * extensions, retries and dead letters (the user's client when one was given), `reader` for
 * XREADGROUP BLOCK, XAUTOCLAIM and XPENDING (always the source's own: a blocked connection can
 * carry nothing else, and close() cuts it short by disconnecting it).
 */
export class RedisConnections {
  private commandClient: Redis | undefined
  private readerClient: Redis | undefined
  private readonly given: Redis | undefined
  /** CLIENT SETNAME of the source's connections: the user's, or conveyor-lanes:<consumer>. */
  private readonly connectionName: string
  private closed = false

  constructor(
    private readonly redis: Redis | string | RedisOptions,
    consumer: string,
  ) {
    this.given = isRedisClient(redis) ? redis : undefined
    // Fail now, not on the first fetch, when ioredis is missing.
    if (!this.given) loadIoredis()
    const named = this.given
      ? this.given.options.connectionName
      : typeof redis === 'object'
        ? (redis as RedisOptions).connectionName
        : undefined
    // A connection name may not contain spaces (CLIENT SETNAME would fail every connect).
    this.connectionName = named || `conveyor-lanes:${consumer}`.replace(/\s/g, '_')
  }

  get command(): Redis {
    if (this.given) return this.given
    this.commandClient ??= this.open({ connectionName: this.connectionName })
    return this.commandClient
  }

  get reader(): Redis {
    // A reader that gave up reconnecting (a retryStrategy that returned no delay): a new one.
    if (this.readerClient?.status === 'end' && !this.closed) this.readerClient = undefined
    if (!this.readerClient) {
      const options = { ...READER, connectionName: `${this.connectionName}:reader` }
      this.readerClient = this.given ? this.given.duplicate(options) : this.open(options)
      this.readerClient.on('error', ignore)
    }
    return this.readerClient
  }

  /** Cuts the reading connection: a blocked XREADGROUP fails at once. */
  disconnectReader(): void {
    this.readerClient?.disconnect()
  }

  /** Closes what the source opened (never the client it was given). */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true
    this.readerClient?.disconnect()
    const own = this.commandClient
    if (!own) return
    if (own.status === 'ready') {
      let timer: NodeJS.Timeout | undefined
      await Promise.race([
        own.quit().catch(ignore),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs)
        }),
      ])
      clearTimeout(timer)
    }
    own.disconnect()
  }

  private open(overrides: Partial<RedisOptions>): Redis {
    const Redis = loadIoredis()
    const client =
      typeof this.redis === 'string'
        ? new Redis(this.redis, overrides)
        : new Redis({ ...(this.redis as RedisOptions), ...overrides })
    // Connection errors reach the source through the commands that fail; without a listener
    // ioredis would print each one.
    client.on('error', ignore)
    return client
  }
}
