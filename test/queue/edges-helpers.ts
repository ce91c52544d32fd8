// Shared by the edges-*.test.ts files: bounds for waits that a regression would turn into a
// hang, and a record of process-level errors (unhandled rejections, uncaught exceptions).
import { execFile } from 'node:child_process'
import { afterEach } from 'vitest'
import { createQueue, type Queue, type QueueOptions } from '../../dist/src/index.js'

/** Rejects with `what` if `promise` has not settled within `ms` (a hang fails, never stalls). */
export function within<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
  })
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer))
}

/** Records unhandled rejections and uncaught exceptions until `dispose()`. */
export function processErrors(): { seen: unknown[]; dispose(): void } {
  const seen: unknown[] = []
  const record = (err: unknown) => {
    seen.push(err)
  }
  process.on('unhandledRejection', record)
  process.on('uncaughtException', record)
  return {
    seen,
    dispose() {
      process.off('unhandledRejection', record)
      process.off('uncaughtException', record)
    },
  }
}

const bounded = new Set<Queue>()

/**
 * Like makeQueue, for tests where the defect makes stop() itself hang: the afterEach of
 * stopBoundedQueuesAfterEach gives up on such a queue after a few seconds instead of
 * waiting out vitest's hook timeout.
 */
export function makeBoundedQueue(options: QueueOptions): Queue {
  const queue = createQueue(options)
  bounded.add(queue)
  return queue
}

export function stopBoundedQueuesAfterEach(): void {
  afterEach(async () => {
    const queues = [...bounded]
    bounded.clear()
    await Promise.all(
      queues.map((q) =>
        within(q.stop({ timeoutMs: 1000 }), 'stop() after the test', 5000).catch(() => undefined),
      ),
    )
  })
}

/** Runs a node script; kills it (SIGKILL) after `timeoutMs`. */
export function runNode(
  script: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; killed: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 24 },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number; killed?: boolean }) | null
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : 1) : 0,
          killed: e?.killed ?? false,
          stdout,
          stderr,
        })
      },
    )
  })
}
