import { MessageChannel, type ResourceLimits } from 'node:worker_threads'
import type { Remote } from 'comlink'
import { Piscina } from 'piscina'
import { ConveyorError } from '../errors.js'
import { type LaneControl, wrapControl } from '../lane/control.js'
import type { LaneExit, LaneInit } from '../lane/protocol.js'
import { workerExecArgv } from './worker-exec-argv.js'

export interface LanePoolOptions {
  threads: number
  maxThreads: number
  resourceLimits?: ResourceLimits
  env?: Record<string, string>
  execArgv?: string[]
  workerData?: unknown
  /** A worker without a lane task failed (Piscina's 'error' event); it is replaced. */
  onError?: (error: Error) => void
}

/** A running lane task: how it ends, its control channel, and a way to end it by force. */
export interface LaneTask {
  exit: Promise<LaneExit>
  control: Remote<LaneControl>
  /** Terminates the task's worker (Piscina aborts a running task that way): `exit` rejects. */
  kill(): void
}

// A CommonJS entry that import()s the lane task: see workers/lane-entry.cts for why.
const LANE_ENTRY = new URL('../../workers/lane-entry.cjs', import.meta.url).href

/**
 * Hosts lane tasks on Piscina: one long-running task per worker, each owning one lane. When a
 * worker dies Piscina rejects its task and starts a replacement; the queue then restarts the
 * lane on it from RELEASE. Piscina's own task channel carries only the lane's setup.
 */
export class LanePool {
  private readonly piscina: Piscina

  constructor(options: LanePoolOptions) {
    this.piscina = createPiscina(options)
    // Piscina emits 'error' for a worker that dies while it runs no task (a stray timer
    // throwing after its lane drained). Unheard, that would throw in the main thread.
    this.piscina.on('error', (err: Error) => options.onError?.(err))
  }

  runLane(init: LaneInit): LaneTask {
    const { port1, port2 } = new MessageChannel()
    const abort = new AbortController()
    const exit = this.piscina.run(
      { ...init, control: port2 },
      { transferList: [port2], signal: abort.signal },
    ) as Promise<LaneExit>
    const control = wrapControl(port1)
    // Don't let the control port alone keep the process alive.
    port1.unref()
    exit.finally(() => port1.close()).catch(() => {})
    return { exit, control, kill: () => abort.abort() }
  }

  async destroy(): Promise<void> {
    await this.piscina.destroy()
  }
}

/** Node checks worker flags when Piscina starts the first workers, here, synchronously. */
function createPiscina(options: LanePoolOptions): Piscina {
  try {
    return new Piscina({
      filename: LANE_ENTRY,
      minThreads: options.threads,
      maxThreads: options.maxThreads,
      concurrentTasksPerWorker: 1,
      // A worker left without a lane (after a resize down) goes away after this.
      idleTimeout: 5_000,
      // Lane tasks never return to Piscina's idle wait while they run; don't block in it.
      atomics: 'disabled',
      resourceLimits: options.resourceLimits,
      env: options.env,
      execArgv: workerExecArgv(options.execArgv),
      workerData: options.workerData,
    })
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw err
    throw new ConveyorError(
      'INVALID_OPTION',
      `execArgv: ${(err as Error).message}; a worker takes no V8 or process-wide flags (for its memory, use resourceLimits)`,
      { cause: err },
    )
  }
}
