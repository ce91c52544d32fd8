import { fileURLToPath } from 'node:url'
import { afterEach } from 'vitest'
// The built package: the main thread and the workers (which load dist/workers) share one copy.
import { createQueue, type Queue, type QueueOptions } from '../../dist/src/index.js'

/** Absolute path of a handler or codec module under test/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
}

const open = new Set<Queue>()

/** createQueue, remembered so that afterEach stops it even when the test failed half-way. */
export function makeQueue(options: QueueOptions): Queue {
  const queue = createQueue(options)
  open.add(queue)
  return queue
}

/** Call once per test file: stops every queue made with makeQueue after each test. */
export function stopQueuesAfterEach(): void {
  afterEach(async () => {
    const queues = [...open]
    open.clear()
    await Promise.all(queues.map((q) => q.stop({ timeoutMs: 1000 }).catch(() => undefined)))
  })
}

/** Polls `condition` (every few ms) until it holds; throws with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const until = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > until)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Small deterministic PRNG (mulberry32): a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The settlement of a rejected promise, for `expect(...).toMatchObject({ code })`. */
export async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/** The error a synchronous call throws. */
export function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected the call to throw, but it returned')
}
