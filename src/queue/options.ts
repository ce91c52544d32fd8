import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ResourceLimits } from 'node:worker_threads'
import { type CodecSpec, moduleHref, toWireSpec, type WireCodecSpec } from '../codec/index.js'
import { ConveyorError, describeValue } from '../errors.js'
import { isPowerOfTwo, MAX_CAPACITY } from '../ring/layout.js'
import { cpuCeiling } from '../tune/cpu-ceiling.js'
import type { HandlerRef } from './handler-ref.js'

export type Threads = number | 'auto' | { min: number; max: number }

/**
 * Options of createQueue(). Only `handler` is required. `In` and `Out` are the handler's
 * message and result types: given, or inferred from a `handlerUrl<typeof import(…)>`.
 */
export interface QueueOptions<In = unknown, Out = unknown> {
  /**
   * Path or URL of the handler module (see `conveyor-lanes/worker`). Required. A relative path
   * resolves against the working directory; prefer a URL relative to your module.
   * @example new URL('./handler.js', import.meta.url)
   * @example handlerUrl<typeof import('./handler.js')>('./handler.js', import.meta.url)
   */
  handler: string | URL | HandlerRef<In, Out>
  /**
   * Worker threads, one lane each. A number (fixed), a range { min, max }, or 'auto': the
   * range { min: 1, max: the CPUs this process may use } (its CPU affinity, capped by a cgroup
   * CPU quota, whole CPUs). A range starts at those CPUs (within the range) and the thread
   * controller (src/tune/controller.ts) moves it while running, a lane at a time, to the
   * fewest threads that give the best throughput ('threads' events; stats().autoscale). At
   * most THREADS_PER_CORE × those CPUs.
   * @example { min: 1, max: 8 }
   * @default 'auto'
   */
  threads?: Threads
  /**
   * How messages cross the ring: 'json' | 'string' | 'bytes' | 'v8' | 'msgpack', or
   * { module } for a module whose default export is { encode, decode }.
   * @default 'json'
   */
  codec?: CodecSpec
  /**
   * Bytes of ring per lane, a power of two from 4 KiB to 512 MiB. A message may use half.
   * @default 1048576 (1 MiB)
   */
  laneBytes?: number
  /**
   * 'none': any lane, the one with the shortest backlog. 'key': same key, same lane, in push
   * order (push(m, { key })).
   * @default 'none'
   */
  ordering?: 'none' | 'key'
  /**
   * Handler attempts per message (also the worker deaths tolerated on one message, 1..255);
   * the first retry's delay, doubling per attempt up to maxBackoffMs; jitter spreads each
   * delay over [½, 1] of itself. A handler's own `backoff(attempt, error)` overrides the
   * delay. Retries happen in place: a retrying message holds its lane (and its key's order).
   * @default { attempts: 3, backoffMs: 50, maxBackoffMs: 5000, jitter: true }
   */
  retry?: { attempts?: number; backoffMs?: number; maxBackoffMs?: number; jitter?: boolean }
  /**
   * Pushes that may wait for room at once before push() rejects with QUEUE_FULL.
   * @default 10000
   */
  maxWaiting?: number
  /**
   * Lanes' fill (0..1) at which 'pause' fires, and at which 'resume' follows.
   * @default { high: 0.8, low: 0.3 }
   */
  watermarks?: { high?: number; low?: number }
  /**
   * How long start() (and a resize, and a replacement worker) waits for handlers' setup().
   * @default 30000
   */
  startTimeoutMs?: number
  /**
   * How long stop() may need to drain the lanes, in ms: each lane then takes no more messages
   * than it can finish in this time at its measured service rate (more wait for room), so a
   * stop() with this budget as its timeout finishes with nothing left in the lanes. For
   * Kubernetes, set it below the pod's terminationGracePeriodSeconds (30 s by default).
   * Off by default: lanes hold as much as laneBytes allows.
   * @example 20000
   */
  drainBudgetMs?: number
  /** Piscina/worker_threads resource limits of each worker. @example { maxOldGenerationSizeMb: 512 } */
  resourceLimits?: ResourceLimits
  /** Environment of the workers. @default process.env */
  env?: Record<string, string>
  /**
   * Node flags of the workers. Without it, workers inherit the app's flags as Node passes them
   * on. With it, workers get this list, after the app's module-loading flags (`--import`,
   * `--require`/`-r`, `--loader`, `--conditions`, Node's TypeScript flags), so that a handler
   * the app loads through `node --import tsx` still loads; a list that names a module-loading
   * flag of its own is used as given. V8 and process-wide flags are refused by Node in a
   * worker (INVALID_OPTION at start()): use `resourceLimits` for memory.
   * @default the app's flags (process.execArgv, less what a worker cannot take)
   */
  execArgv?: string[]
  /** Any structured-clonable value; handlers read it from worker_threads' workerData. */
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
  maxBackoffMs: number
  jitter: boolean
  maxWaiting: number
  high: number
  low: number
  startTimeoutMs: number
  /** Off: undefined. */
  drainBudgetMs: number | undefined
  /** threads { min, max } or 'auto': the thread controller moves the count within it while running. */
  adaptive: { min: number; max: number } | undefined
  resourceLimits?: ResourceLimits
  env?: Record<string, string>
  execArgv?: string[]
  workerData?: unknown
}

/**
 * Threads allowed per CPU this process may use. Handlers are CPU-bound: past the CPUs, threads
 * only contend, and each costs a worker (~10 MB) and three lane buffers (3 × laneBytes of
 * shared memory).
 */
export const THREADS_PER_CORE = 4

/**
 * The CPUs this process may use (src/tune/cpu-ceiling.ts: the affinity, capped by a cgroup CPU
 * quota, which os.availableParallelism() ignores on Node 20), read once per process.
 */
function usableCpus(): number {
  return cpuCeiling().cpus
}

/** "this process may use 2 CPUs (cgroup v2 cpu.max 200000/100000)": where the number came from. */
function usableCpusText(): string {
  const { cpus, detail } = cpuCeiling()
  return `this process may use ${cpus} CPU${cpus === 1 ? '' : 's'} (${detail})`
}

/** The most threads a queue may run in this process. */
export function threadCeiling(): number {
  return THREADS_PER_CORE * usableCpus()
}

const RESOURCE_LIMITS: readonly (keyof ResourceLimits)[] = [
  'maxOldGenerationSizeMb',
  'maxYoungGenerationSizeMb',
  'codeRangeSizeMb',
  'stackSizeMb',
]

function invalid(message: string): ConveyorError {
  return new ConveyorError('INVALID_OPTION', message)
}

function positiveInt(name: string, value: unknown, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw invalid(`${name} must be an integer ≥ ${min}, got ${describeValue(value)}`)
  }
  return value
}

function threadCount(name: string, value: unknown): number {
  const n = positiveInt(name, value)
  const ceiling = threadCeiling()
  if (n > ceiling) {
    throw invalid(
      `${name} is ${n}, above the ceiling of ${ceiling} threads: ${THREADS_PER_CORE} per CPU, and ${usableCpusText()}. Handlers are CPU-bound, so more threads than CPUs only contend.`,
    )
  }
  return n
}

export function resolveMaxThreads(threads: Threads | undefined, initial: number): number {
  if (threads && typeof threads === 'object') return threads.max
  return Math.max(initial, usableCpus())
}

export function resolveThreads(threads: Threads | undefined): number {
  if (threads === undefined || threads === 'auto') return usableCpus()
  if (typeof threads === 'number') return threadCount('threads', threads)
  if (threads && typeof threads === 'object') {
    const min = threadCount('threads.min', threads.min)
    const max = threadCount('threads.max', threads.max)
    if (min > max) throw invalid(`threads.min (${min}) must not exceed threads.max (${max})`)
    // A range starts at the CPUs it may use; the thread controller then moves within it.
    return Math.max(min, Math.min(max, usableCpus()))
  }
  throw invalid(`threads must be a number, 'auto' or { min, max }, got ${describeValue(threads)}`)
}

function optionalObject(name: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalid(`${name} must be an object, got ${describeValue(value)}`)
  }
  return value as Record<string, unknown>
}

function checkResourceLimits(value: unknown): ResourceLimits | undefined {
  const limits = optionalObject('resourceLimits', value)
  if (!limits) return undefined
  for (const [key, v] of Object.entries(limits)) {
    if (!(RESOURCE_LIMITS as readonly string[]).includes(key)) {
      throw invalid(
        `resourceLimits.${key} is not a worker resource limit: use ${RESOURCE_LIMITS.join(', ')}`,
      )
    }
    if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) {
      throw invalid(`resourceLimits.${key} must be a number of MB > 0, got ${describeValue(v)}`)
    }
  }
  return limits as ResourceLimits
}

function checkEnv(value: unknown): Record<string, string> | undefined {
  const env = optionalObject('env', value)
  if (!env) return undefined
  for (const [key, v] of Object.entries(env)) {
    if (typeof v !== 'string') throw invalid(`env.${key} must be a string, got ${describeValue(v)}`)
  }
  return env as Record<string, string>
}

function checkExecArgv(value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) {
    throw invalid(`execArgv must be an array of strings (Node flags), got ${describeValue(value)}`)
  }
  return value
}

function checkWorkerData(value: unknown): unknown {
  try {
    structuredClone(value)
  } catch (err) {
    throw invalid(
      `workerData must be structured-clonable (it is copied to every worker): ${(err as Error).message}`,
    )
  }
  return value
}

export function resolveOptions<In, Out>(options: QueueOptions<In, Out>): ResolvedOptions {
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
      `laneBytes must be a power of two between 4096 and ${MAX_CAPACITY / 2}, got ${describeValue(laneBytes)}`,
    )
  }
  const ordering = options.ordering ?? 'none'
  if (ordering !== 'none' && ordering !== 'key')
    throw invalid(`ordering must be 'none' or 'key', got ${describeValue(ordering)}`)
  const retry = optionalObject('retry', options.retry)
  const attempts = positiveInt('retry.attempts', retry?.attempts ?? 3)
  if (attempts > 255) throw invalid(`retry.attempts must be at most 255, got ${attempts}`)
  const backoffMs = retry?.backoffMs ?? 50
  if (typeof backoffMs !== 'number' || !(backoffMs >= 0) || !Number.isFinite(backoffMs))
    throw invalid(`retry.backoffMs must be a number ≥ 0, got ${describeValue(backoffMs)}`)
  const maxBackoffMs = retry?.maxBackoffMs ?? 5_000
  if (typeof maxBackoffMs !== 'number' || !(maxBackoffMs >= 0) || !Number.isFinite(maxBackoffMs))
    throw invalid(`retry.maxBackoffMs must be a number ≥ 0, got ${describeValue(maxBackoffMs)}`)
  const jitter = retry?.jitter ?? true
  if (typeof jitter !== 'boolean')
    throw invalid(`retry.jitter must be true or false, got ${describeValue(jitter)}`)
  const watermarks = optionalObject('watermarks', options.watermarks)
  const high = watermarks?.high ?? 0.8
  const low = watermarks?.low ?? 0.3
  if (typeof high !== 'number' || typeof low !== 'number' || !(low >= 0 && low < high && high <= 1))
    throw invalid(
      `watermarks need 0 ≤ low < high ≤ 1, got low ${describeValue(low)}, high ${describeValue(high)}`,
    )
  const startTimeoutMs = options.startTimeoutMs ?? 30_000
  if (typeof startTimeoutMs !== 'number' || !(startTimeoutMs > 0) || startTimeoutMs > 2 ** 31 - 1)
    throw invalid(
      `startTimeoutMs must be a number of milliseconds > 0 (at most 2^31-1), got ${describeValue(startTimeoutMs)}`,
    )
  const { drainBudgetMs } = options
  if (
    drainBudgetMs !== undefined &&
    (typeof drainBudgetMs !== 'number' || !(drainBudgetMs > 0) || drainBudgetMs > 2 ** 31 - 1)
  )
    throw invalid(
      `drainBudgetMs must be a number of milliseconds > 0 (at most 2^31-1), or left out, got ${describeValue(drainBudgetMs)}`,
    )
  const threads = resolveThreads(options.threads)
  const range = options.threads
  const adaptive =
    range !== null && typeof range === 'object'
      ? { min: Math.min(range.min, threads), max: range.max }
      : (range === undefined || range === 'auto') && threads > 1
        ? // 'auto': the usable CPUs, or fewer where fewer give the same throughput.
          { min: 1, max: threads }
        : undefined
  return {
    handler: href,
    threads,
    maxThreads: resolveMaxThreads(options.threads, threads),
    codec: toWireSpec(options.codec ?? 'json'),
    laneBytes,
    ordering,
    attempts,
    backoffMs,
    maxBackoffMs,
    jitter,
    maxWaiting: positiveInt('maxWaiting', options.maxWaiting ?? 10_000, 0),
    high,
    low,
    startTimeoutMs,
    drainBudgetMs,
    adaptive,
    resourceLimits: checkResourceLimits(options.resourceLimits),
    env: checkEnv(options.env),
    execArgv: checkExecArgv(options.execArgv),
    workerData: checkWorkerData(options.workerData),
  }
}
