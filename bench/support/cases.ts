import { Piscina } from 'piscina'
import Tinypool from 'tinypool'
import { createQueue, type Queue } from '../../src/index.js'
import type { Case, CaseParams, LatencyRecorder, Target } from '../harness.js'
import { SampleSize } from './sample-size.js'
import { STALL_MS, StallGuard } from './signals.js'
import { ROUNDS_ENV, work } from './work.js'

/**
 * Case builders shared by the end-to-end suites (queue, matrix): the same workload run inline,
 * on Piscina (per message and batched), on Tinypool and on conveyor. Throughput cases size
 * their samples by time (SampleSize); every pool and queue is closed in teardown.
 */

/** What a CPU case moves: messages cycled through, and the handler's calibrated cost. */
export interface Workload {
  /** Distinct messages, a power-of-two count. */
  messages: string[]
  /** Rounds of bench/support/work.ts per message (0: an empty handler). */
  rounds: number
}

/** How a case is named, grouped and compared (see Case). */
export interface CaseMeta {
  name: string
  group?: string
  params?: CaseParams
  peers?: string[]
  targets?: Target[]
}

const workerUrl = (file: string) => new URL(`../workers/${file}`, import.meta.url)
export const WORK_TASK = workerUrl('work-task.js').href
export const WORK_HANDLER = workerUrl('work-handler.js')
export const NOOP_HANDLER = workerUrl('noop-handler.js')
export const PISCINA_CONSUMER = workerUrl('piscina-consumer.js').href

/** Messages per Piscina/Tinypool task in the batched peers. */
export const BATCH = 256

function envOf(w: Workload): Record<string, string> {
  return { [ROUNDS_ENV]: String(w.rounds) }
}

/** Keeps inline results observable so the loop cannot be dropped. */
export const inlineSink = { value: 0 }

/** A plain sync loop, outside any async function, as a handler loop would be. */
function inlineLoop(messages: string[], rounds: number, n: number): number {
  const mask = messages.length - 1
  let sink = 0
  for (let i = 0; i < n; i++) sink ^= work(messages[i & mask], rounds)
  return sink
}

/** The same work in a plain loop on the main thread: the one-core baseline. */
export function inlineCase(meta: CaseMeta, w: Workload, targetMs: number): Case {
  const size = new SampleSize(targetMs)
  return {
    ...meta,
    async run() {
      const n = size.next
      const t0 = performance.now()
      inlineSink.value ^= inlineLoop(w.messages, w.rounds, n)
      size.observe(n, performance.now() - t0)
      return n
    },
  }
}

/** A worker pool as the per-message cases use it: Piscina and Tinypool share this shape. */
interface RunPool {
  run(message: string): Promise<number>
  destroy(): Promise<void>
}

/** Options both pools take for the CPU cases. */
function poolOptions(w: Workload, threads: number) {
  return { filename: WORK_TASK, minThreads: threads, maxThreads: threads, env: envOf(w) }
}

/** A pool with `threads` workers, one run() per message, all of a sample's runs in flight. */
function poolRunCase(
  meta: CaseMeta,
  w: Workload,
  threads: number,
  targetMs: number,
  makePool: () => RunPool,
): Case {
  let pool: RunPool | undefined
  const size = new SampleSize(targetMs)
  return {
    ...meta,
    async setup() {
      pool = makePool()
      await Promise.all(Array.from({ length: threads }, () => pool!.run(w.messages[0])))
    },
    async run() {
      const p = pool!
      const n = size.next
      const { messages } = w
      const mask = messages.length - 1
      const t0 = performance.now()
      const runs: Promise<number>[] = new Array(n)
      for (let i = 0; i < n; i++) runs[i] = p.run(messages[i & mask])
      let moved = 0
      for (const k of await Promise.all(runs)) moved += k
      size.observe(moved, performance.now() - t0)
      return moved
    },
    async teardown() {
      await pool?.destroy()
    },
  }
}

/** Piscina with `threads` workers, one run() per message, all of a sample's runs in flight. */
export function piscinaRunCase(
  meta: CaseMeta,
  w: Workload,
  threads: number,
  targetMs: number,
): Case {
  return poolRunCase(meta, w, threads, targetMs, () => new Piscina(poolOptions(w, threads)))
}

function batchesOf(messages: string[], n: number): string[][] {
  const mask = messages.length - 1
  const batches: string[][] = []
  for (let i = 0; i < n; ) {
    const k = Math.min(BATCH, n - i)
    const batch: string[] = new Array(k)
    for (let j = 0; j < k; j++, i++) batch[j] = messages[i & mask]
    batches.push(batch)
  }
  return batches
}

/** Piscina with `threads` workers, one run() per BATCH messages, all batches in flight. */
export function piscinaBatchCase(
  meta: CaseMeta,
  w: Workload,
  threads: number,
  targetMs: number,
): Case {
  let pool: Piscina | undefined
  const size = new SampleSize(targetMs, BATCH)
  return {
    ...meta,
    async setup() {
      pool = new Piscina(poolOptions(w, threads))
      await Promise.all(Array.from({ length: threads }, () => pool!.run([w.messages[0]])))
    },
    async run() {
      const p = pool!
      const n = size.next
      const t0 = performance.now()
      const runs = batchesOf(w.messages, n).map((batch) => p.run(batch) as Promise<number>)
      let moved = 0
      for (const k of await Promise.all(runs)) moved += k
      size.observe(moved, performance.now() - t0)
      return moved
    },
    async teardown() {
      await pool?.destroy()
    },
  }
}

/** Tinypool with `threads` workers, one run() per message, all of a sample's runs in flight. */
export function tinypoolRunCase(
  meta: CaseMeta,
  w: Workload,
  threads: number,
  targetMs: number,
): Case {
  return poolRunCase(meta, w, threads, targetMs, () => new Tinypool(poolOptions(w, threads)))
}

/**
 * Counts push() acks against a target, and turns a queue that stopped making progress (or
 * reported a failure) into an error instead of a hang.
 */
class AckCounter {
  private count = 0
  private target = 0
  private wake: (() => void) | undefined
  private failure: Error | undefined
  readonly ack = () => {
    if (++this.count === this.target && this.wake) this.wake()
  }

  get acked(): number {
    return this.count
  }

  /** The first failure reported, if any. */
  get failed(): Error | undefined {
    return this.failure
  }

  expect(messages: number): number {
    this.target += messages
    return this.target
  }

  fail(error: Error): void {
    this.failure ??= error
    this.wake?.()
  }

  async reached(target: number): Promise<void> {
    const stall = new StallGuard('conveyor: no ack', STALL_MS)
    while (this.count < target) {
      if (this.failure) throw this.failure
      stall.waiting(this.count)
      let timer: NodeJS.Timeout | undefined
      await new Promise<void>((resolve) => {
        this.wake = resolve
        timer = setTimeout(resolve, 250)
      })
      clearTimeout(timer)
      this.wake = undefined
    }
    if (this.failure) throw this.failure
  }
}

export interface ConveyorOptions {
  handler: URL
  threads: number
  laneBytes?: number
  env?: Record<string, string>
}

/** A started queue whose failures (handler errors, dead workers) are reported to `onFailure`. */
async function startQueue(o: ConveyorOptions, onFailure: (e: Error) => void): Promise<Queue> {
  const queue = createQueue({
    handler: o.handler,
    threads: o.threads,
    codec: 'string',
    laneBytes: o.laneBytes,
    env: o.env,
  })
  queue.on('error', onFailure)
  queue.on('failed', (error) => onFailure(error))
  queue.on('dead-letter', ({ error }) => onFailure(error))
  queue.on('worker-exit', ({ error }) => onFailure(error))
  await queue.start()
  return queue
}

/**
 * Guards a sample against a queue that stops moving (a push or run() that never settles): when
 * `progress()` has not changed for STALL_MS, `stall` gets an error (the case fails) and the
 * queue is stopped, which rejects whatever still waits on it. Returns the disarm function.
 */
function watchdog(queue: Queue, progress: () => number, stall: (error: Error) => void): () => void {
  let last = progress()
  let since = performance.now()
  const timer = setInterval(() => {
    const now = progress()
    if (now !== last) {
      last = now
      since = performance.now()
    } else if (performance.now() - since > STALL_MS) {
      clearInterval(timer)
      stall(new Error(`conveyor made no progress for ${STALL_MS} ms`))
      queue.stop({ timeoutMs: 1000 }).catch(() => {})
    }
  }, 250)
  timer.unref()
  return () => clearInterval(timer)
}

async function stopQueue(queue: Queue | undefined): Promise<void> {
  if (!queue) return
  const report = await queue.stop({ timeoutMs: 5000 })
  if (!report.drained)
    throw new Error(`the queue did not drain on stop (${report.unprocessed.length} left)`)
}

/**
 * conveyor end to end, then wait until every ack of the sample fired (codec 'string'): with
 * `batch` 1, `await queue.push(message, { ack })` per message; with more, `await
 * queue.pushMany(batch, { ack })` per batch of the pool's messages, built once (a producer
 * holding a batch of records is the use case), and the sample size rounds up to whole batches.
 */
export function conveyorPushCase(
  meta: CaseMeta,
  w: Workload,
  options: Omit<ConveyorOptions, 'env'>,
  targetMs: number,
  batch = 1,
): Case {
  let queue: Queue | undefined
  const acks = new AckCounter()
  // One options object for every push: what a tight producer loop would do.
  const pushOptions = { ack: acks.ack }
  const size = new SampleSize(targetMs)
  const { messages } = w
  const mask = messages.length - 1
  const messagesOfBatch = Array.from({ length: batch }, (_, i) => messages[i & mask])
  return {
    ...meta,
    conveyor: true,
    async setup() {
      queue = await startQueue({ ...options, env: envOf(w) }, (e) => acks.fail(e))
    },
    async run() {
      const q = queue!
      const calls = Math.max(1, Math.ceil(size.next / batch))
      const n = calls * batch
      const t0 = performance.now()
      const target = acks.expect(n)
      let i = 0
      const disarm = watchdog(
        q,
        () => i * batch + acks.acked,
        (e) => acks.fail(e),
      )
      try {
        if (batch === 1) for (; i < n; i++) await q.push(messages[i & mask], pushOptions)
        else for (; i < calls; i++) await q.pushMany(messagesOfBatch, pushOptions)
        await acks.reached(target)
      } catch (err) {
        // The cause (a handler error, a stall) rather than its echo (QUEUE_STOPPED).
        throw acks.failed ?? err
      } finally {
        disarm()
      }
      size.observe(n, performance.now() - t0)
      return n
    },
    async teardown() {
      await stopQueue(queue)
    },
  }
}

/** conveyor round trip when idle: `await queue.run(message)`, one after the other, 1 thread. */
export function conveyorRunLatencyCase(meta: CaseMeta, message: string, ops: number): Case {
  let queue: Queue | undefined
  let failure: Error | undefined
  return {
    ...meta,
    conveyor: true,
    metric: 'latency',
    async setup() {
      queue = await startQueue({ handler: NOOP_HANDLER, threads: 1 }, (e) => {
        failure ??= e
      })
      await queue.run(message)
    },
    async run(record: LatencyRecorder) {
      const q = queue!
      let i = 0
      const disarm = watchdog(
        q,
        () => i,
        (e) => {
          failure ??= e
        },
      )
      try {
        for (; i < ops; i++) {
          const t0 = performance.now()
          await q.run(message)
          record((performance.now() - t0) * 1000)
        }
      } catch (err) {
        throw failure ?? err
      } finally {
        disarm()
      }
      if (failure) throw failure
      return ops
    },
    async teardown() {
      await stopQueue(queue)
    },
  }
}

/** Piscina round trip when idle: `await pool.run(message)`, one after the other, 1 thread. */
export function piscinaRunLatencyCase(meta: CaseMeta, message: string, ops: number): Case {
  let pool: Piscina | undefined
  return {
    ...meta,
    metric: 'latency',
    async setup() {
      pool = new Piscina({ filename: PISCINA_CONSUMER, minThreads: 1, maxThreads: 1 })
      await pool.run(message)
    },
    async run(record: LatencyRecorder) {
      const p = pool!
      for (let i = 0; i < ops; i++) {
        const t0 = performance.now()
        await p.run(message)
        record((performance.now() - t0) * 1000)
      }
      return ops
    },
    async teardown() {
      await pool?.destroy()
    },
  }
}
