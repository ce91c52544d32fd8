import { hostname } from 'node:os'
import type { Redis, RedisOptions } from 'ioredis'
import { invalid } from '../../check-options.js'
import { describeValue } from '../../errors.js'
import type { SourceOptions } from '../source.js'
import {
  type ResolvedSourceOptions,
  resolveSourceOptions,
  SOURCE_OPTION_KEYS,
} from '../source-options.js'

export const LABEL = 'redisSource()'

export interface RedisSourceOptions<T = unknown> extends SourceOptions<T> {
  /**
   * An ioredis client you made: the source sends its acks, claims and dead letters on it and
   * never closes it; for its blocking reads it opens one `duplicate()` of it, which it closes.
   * Or what `new Redis()` takes (a URL or RedisOptions): the source opens both connections and
   * closes them in close().
   * @default {} (127.0.0.1:6379)
   * @example 'redis://127.0.0.1:6379/0'
   */
  redis?: Redis | string | RedisOptions
  /** The stream to consume. @example 'orders' */
  stream: string
  /** The consumer group every process of this service shares. @example 'billing' */
  group: string
  /**
   * This consumer's name in the group: unique per process. A name kept across restarts lets a
   * restarted process read its own pending entries first; the default, which changes with each
   * process, leaves them to the others' claims (after claimIdleMs), and is removed from the
   * group by close() when nothing is pending on it.
   * @default `${hostname}-${pid}` (a second source in the process: `-2`, …)
   */
  consumer?: string
  /**
   * Create the group (and the stream: MKSTREAM) if it does not exist: true or '0' from the
   * stream's first entry, '$' from the entries added after it. false: it must exist (a missing
   * one ends the source: consume() rejects with SOURCE_FAILED).
   * @default true
   */
  createGroup?: boolean | '0' | '$'
  /**
   * How long one XREADGROUP waits for new entries (BLOCK). close() does not wait for it: it
   * closes the reading connection.
   * @default 1000
   */
  blockMs?: number
  /**
   * An entry pending on a consumer that has not touched it for this long is claimed (XAUTOCLAIM)
   * by another: this is how a crashed consumer's messages come back. The source extends the
   * entries it holds every claimIdleMs / 3 (XCLAIM … JUSTID), and sweeps for idle ones every
   * claimIdleMs / 2.
   * @default 30000
   */
  claimIdleMs?: number
  /** Where dead letters go (XADD). @default `${stream}:dead` */
  deadLetterStream?: string
  /** The entry field that holds the message's payload. @default 'data' */
  field?: string
}

export type CreateGroupFrom = '0' | '$'

/** What the adapter needs: the Redis options, and the shared ones it uses. */
export interface RedisAdapterOptions {
  redis: Redis | string | RedisOptions
  stream: string
  group: string
  consumer: string
  /** The consumer name is the default one (close() may remove it from the group). */
  defaultConsumer: boolean
  createGroup: CreateGroupFrom | false
  blockMs: number
  claimIdleMs: number
  deadLetterStream: string
  field: string
  closeTimeoutMs: number
}

export interface ResolvedRedisOptions<T> {
  shared: ResolvedSourceOptions<T>
  adapter: RedisAdapterOptions
}

const KEYS = [
  ...SOURCE_OPTION_KEYS,
  'redis',
  'stream',
  'group',
  'consumer',
  'createGroup',
  'blockMs',
  'claimIdleMs',
  'deadLetterStream',
  'field',
] as const

const MAX_MS = 2 ** 31 - 1

function nameOption(name: string, value: unknown, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) {
    throw invalid(LABEL, `${name} must be a non-empty string, got ${describeValue(value)}`)
  }
  return value
}

function msOption(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_MS) {
    throw invalid(
      LABEL,
      `${name} must be a whole number of milliseconds ≥ ${min}, got ${describeValue(value)}`,
    )
  }
  return value
}

/** An ioredis client (Redis, or anything shaped like it: duplicate() and the stream commands). */
export function isRedisClient(value: unknown): value is Redis {
  if (typeof value !== 'object' || value === null) return false
  const client = value as Record<string, unknown>
  return ['duplicate', 'xack', 'xreadgroupBuffer', 'multi', 'pipeline'].every(
    (method) => typeof client[method] === 'function',
  )
}

function redisOption(value: unknown): Redis | string | RedisOptions {
  if (value === undefined) return {}
  if (typeof value === 'string' && value.length > 0) return value
  if (isRedisClient(value)) return value
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const proto = Object.getPrototypeOf(value)
    if (proto === Object.prototype || proto === null) return value as RedisOptions
  }
  throw invalid(
    LABEL,
    `redis must be an ioredis client, a redis:// URL or ioredis options like { host, port }, got ${describeValue(value)}`,
  )
}

function createGroupOption(value: unknown): CreateGroupFrom | false {
  if (value === undefined || value === true || value === '0') return '0'
  if (value === false) return false
  if (value === '$') return '$'
  throw invalid(LABEL, `createGroup must be true, false, '0' or '$', got ${describeValue(value)}`)
}

let sources = 0

/** hostname-pid; a second source in the same process gets hostname-pid-2, and so on. */
function defaultConsumer(): string {
  sources++
  const name = `${hostname()}-${process.pid}`
  return sources === 1 ? name : `${name}-${sources}`
}

/** Checks redisSource()'s options; every mistake is an INVALID_OPTION naming the option. */
export function resolveRedisOptions<T>(options: unknown): ResolvedRedisOptions<T> {
  if (options === undefined) {
    throw invalid(LABEL, "options are required: { redis, stream: 'orders', group: 'billing' }")
  }
  const { shared, all } = resolveSourceOptions<T>(LABEL, options, KEYS)
  const stream = nameOption('stream', all.stream)
  const group = nameOption('group', all.group)
  const consumer = all.consumer === undefined ? undefined : nameOption('consumer', all.consumer)
  const adapter: RedisAdapterOptions = {
    redis: redisOption(all.redis),
    stream,
    group,
    consumer: consumer ?? '',
    defaultConsumer: consumer === undefined,
    createGroup: createGroupOption(all.createGroup),
    blockMs: msOption('blockMs', all.blockMs, 1000, 1),
    claimIdleMs: msOption('claimIdleMs', all.claimIdleMs, 30_000, 3),
    deadLetterStream: nameOption('deadLetterStream', all.deadLetterStream, `${stream}:dead`),
    field: nameOption('field', all.field, 'data'),
    closeTimeoutMs: shared.closeTimeoutMs,
  }
  if (adapter.deadLetterStream === stream) {
    throw invalid(LABEL, `deadLetterStream must differ from stream ('${stream}')`)
  }
  // Last: a source whose options are refused takes no name.
  if (consumer === undefined) adapter.consumer = defaultConsumer()
  return { shared, adapter }
}
