import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import type { ResourceLimits } from 'node:worker_threads'
import { type CodecSpec, moduleHref, toWireSpec, type WireCodecSpec } from '../codec/index.js'
import { ConveyorError } from '../errors.js'
import { isPowerOfTwo, MAX_CAPACITY } from '../ring/layout.js'

export type Threads = number | 'auto' | { min: number; max: number }

export interface QueueOptions {
  /** Path or URL of the handler module (see `conveyor/worker`). Required. */
  handler: string | URL
  /** Worker threads, one lane each. Default 'auto': os.availableParallelism(). */
  threads?: Threads
  /** How messages cross the ring. Default 'json'. */
  codec?: CodecSpec
  /** Bytes of ring per lane, a power of two ≥ 4 KiB. Default 1 MiB. A message may use half. */
  laneBytes?: number
  /** 'none' (default): any lane, shortest backlog. 'key': same key, same lane, in push order. */
  ordering?: 'none' | 'key'
  /** Handler attempts per message (and worker deaths tolerated on it), and the first backoff. */
  retry?: { attempts?: number; backoffMs?: number }
  /** Pushes that may wait for room at once before push() rejects with QUEUE_FULL. Default 10000. */
  maxWaiting?: number
  /** Backlog fractions at which 'pause' and 'resume' fire. Default 0.8 and 0.3. */
  watermarks?: { high?: number; low?: number }
  resourceLimits?: ResourceLimits
  env?: Record<string, string>
  execArgv?: string[]
  workerData?: unknown
}

export interface ResolvedOptions {
  handler: string
  threads: number
  /** The most lanes resize() may reach. */
  maxThreads: number
  codec: WireCodecSpec
  laneBytes: number
  ordering: 'none' | 'key'
  attempts: number
  backoffMs: number
  maxWaiting: number
  high: number
  low: number
  resourceLimits?: ResourceLimits
  env?: Record<string, string>
  execArgv?: string[]
  workerData?: unknown
}

function invalid(message: string): ConveyorError {
  return new ConveyorError('INVALID_OPTION', message)
}

function positiveInt(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(`${name} must be an integer ≥ ${min}, got ${String(value)}`)
  }
  return value
}

export function resolveMaxThreads(threads: Threads | undefined, initial: number): number {
  if (threads && typeof threads === 'object') return threads.max
  return Math.max(initial, availableParallelism())
}

export function resolveThreads(threads: Threads | undefined): number {
  if (threads === undefined || threads === 'auto') return availableParallelism()
  if (typeof threads === 'number') return positiveInt('threads', threads)
  if (threads && typeof threads === 'object') {
    const min = positiveInt('threads.min', threads.min)
    const max = positiveInt('threads.max', threads.max)
    if (min > max) throw invalid(`threads.min (${min}) must not exceed threads.max (${max})`)
    // Until the online tuner exists, a range starts at the cores it may use.
    return Math.max(min, Math.min(max, availableParallelism()))
  }
  throw invalid(`threads must be a number, 'auto' or { min, max }, got ${String(threads)}`)
}

export function resolveOptions(options: QueueOptions): ResolvedOptions {
  if (!options || typeof options !== 'object')
    throw invalid('createQueue(options) needs an options object')
  const { handler } = options
  if (typeof handler !== 'string' && !(handler instanceof URL)) {
    throw new ConveyorError(
      'HANDLER_INVALID',
      'options.handler is required: the path or URL of a module that exports default defineHandler({ handle })',
    )
  }
  const href = moduleHref(handler)
  if (href.startsWith('file:') && !existsSync(fileURLToPath(href))) {
    throw new ConveyorError('HANDLER_INVALID', `handler module not found: ${fileURLToPath(href)}`)
  }
  const laneBytes = options.laneBytes ?? 1 << 20
  if (!isPowerOfTwo(laneBytes) || laneBytes < 4096 || laneBytes > MAX_CAPACITY / 2) {
    throw invalid(
      `laneBytes must be a power of two between 4096 and ${MAX_CAPACITY / 2}, got ${laneBytes}`,
    )
  }
  const ordering = options.ordering ?? 'none'
  if (ordering !== 'none' && ordering !== 'key')
    throw invalid(`ordering must be 'none' or 'key', got ${String(ordering)}`)
  const attempts = positiveInt('retry.attempts', options.retry?.attempts ?? 3)
  if (attempts > 255) throw invalid('retry.attempts must be at most 255')
  const backoffMs = options.retry?.backoffMs ?? 50
  if (typeof backoffMs !== 'number' || !(backoffMs >= 0))
    throw invalid(`retry.backoffMs must be a number ≥ 0, got ${String(backoffMs)}`)
  const high = options.watermarks?.high ?? 0.8
  const low = options.watermarks?.low ?? 0.3
  if (!(low >= 0 && low < high && high <= 1))
    throw invalid(`watermarks need 0 ≤ low < high ≤ 1, got low ${low}, high ${high}`)
  const threads = resolveThreads(options.threads)
  return {
    handler: href,
    threads,
    maxThreads: resolveMaxThreads(options.threads, threads),
    codec: toWireSpec(options.codec ?? 'json'),
    laneBytes,
    ordering,
    attempts,
    backoffMs,
    maxWaiting: positiveInt('maxWaiting', options.maxWaiting ?? 10_000, 0),
    high,
    low,
    resourceLimits: options.resourceLimits,
    env: options.env,
    execArgv: options.execArgv,
    workerData: options.workerData,
  }
}
