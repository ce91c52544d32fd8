import { ConveyorError } from '../errors.js'
import { Stat } from '../lane/protocol.js'
import type { LanePool, LaneTask } from '../pool/lane-pool.js'
import type { EventFence } from './events.js'
import type { Lane } from './lane.js'
import type { ResolvedOptions } from './options.js'

/** First delay before restarting a lane whose worker failed in setup; doubles, capped. */
const SETUP_RETRY_MS = 50
const SETUP_RETRY_MAX_MS = 5_000

export type Phase = 'starting' | 'running' | 'stopping' | 'stopped'

export interface SupervisorHost {
  phase(): Phase
  events: EventFence
  /** A lane has a new worker: watch its messages again, flush waiting pushes. */
  restarted(lane: Lane): void
}

/** One lane's life as the supervisor sees it. Nothing outside this file writes these. */
interface Supervised {
  readonly lane: Lane
  task: LaneTask | undefined
  /** Bumped per task started: outcomes of an older task are ignored. */
  generation: number
  /** The lane served messages once: a failure now restarts it instead of failing a launch. */
  established: boolean
  /** Tasks that ended in a crash or a failed setup and were replaced. */
  restarts: number
  /** Failed setups in a row (thrown, exited, timed out): sets the restart delay. */
  setupFailures: number
  retry: NodeJS.Timeout | undefined
  /** Settles the launch: resolved on the first ready, rejected if the lane never gets there. */
  launched: { resolve: () => void; reject: (error: Error) => void }
  finished: Promise<void>
  finish: () => void
  ended: boolean
}

/**
 * Lane tasks' lifecycle: launch (ready within startTimeoutMs), crash (settle what the dead
 * worker finished, judge the record it was handling, restart), setup failure (thrown, exited,
 * or hung: restart after a growing delay, blaming no message), teardown errors (reported once,
 * never a restart), retirement (a resize down), and the end (close, drain, abort).
 *
 * Every lane with a task is registered here until it ended, whether the dispatcher still
 * sends to it or not: stop() closes, waits for, and collects messages from all of them.
 */
export class Supervisor {
  private readonly registry = new Map<Lane, Supervised>()

  constructor(
    private readonly options: ResolvedOptions,
    private readonly pool: LanePool,
    private readonly host: SupervisorHost,
  ) {}

  /**
   * Starts a task for a new lane. Resolves once its handler is set up; rejects with
   * HANDLER_INVALID (module or setup failed), START_TIMEOUT, or QUEUE_STOPPED (closed first).
   */
  launch(lane: Lane): Promise<void> {
    let launched!: Supervised['launched']
    const ready = new Promise<void>((resolve, reject) => {
      launched = { resolve, reject }
    })
    let finish!: () => void
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    const s: Supervised = {
      lane,
      task: undefined,
      generation: 0,
      established: false,
      restarts: 0,
      setupFailures: 0,
      retry: undefined,
      launched,
      finished,
      finish,
      ended: false,
    }
    this.registry.set(lane, s)
    this.startTask(s)
    return ready
  }

  /** Messages written to any lane (active or retiring) and not yet settled. */
  inFlight(): number {
    let n = 0
    for (const lane of this.registry.keys()) n += lane.outstanding
    return n
  }

  restartsOf(lane: Lane): number {
    return this.registry.get(lane)?.restarts ?? 0
  }

  /** No more messages for these lanes: they drain, tear down and end. Resolves then. */
  retire(lanes: readonly Lane[]): Promise<void> {
    for (const lane of lanes) lane.writer.close()
    return Promise.all(lanes.map((lane) => this.registry.get(lane)?.finished)).then(() => {})
  }

  /** Closes every lane: each drains what it holds, tears down, and ends. */
  closeAll(): void {
    for (const s of this.registry.values()) {
      s.lane.writer.close()
      // Waiting to retry a failed setup with nothing to drain: nothing to wait for.
      if (s.retry && s.lane.outstanding === 0) this.end(s)
    }
  }

  /** Stops every lane after the record it is handling (stop() past its timeout). */
  abortAll(): void {
    for (const s of this.registry.values()) {
      s.lane.abort()
      if (s.retry) this.end(s)
    }
  }

  /** Resolves once every registered lane's task ended for good. */
  allFinished(): Promise<void> {
    return Promise.all([...this.registry.values()].map((s) => s.finished)).then(() => {})
  }

  /**
   * Once every worker is gone: settles what they finished, and returns every message still in
   * a lane, decoded, lane by lane in lane order.
   */
  takeUnprocessed(): unknown[] {
    const lanes = [...this.registry.keys()].sort((a, b) => a.index - b.index)
    return lanes.flatMap((lane) => lane.takeUnprocessed())
  }

  /** Runs `event` through onEvent in each lane's worker; a dead or ending worker is skipped. */
  async broadcast(lanes: readonly Lane[], event: unknown): Promise<void> {
    await Promise.all(
      lanes.map((lane) => {
        const task = this.registry.get(lane)?.task
        if (!task) return undefined
        const ended = task.exit.then(
          () => undefined,
          () => undefined,
        )
        return Promise.race([task.control.broadcast(event), ended])
      }),
    )
  }

  private startTask(s: Supervised): void {
    const o = this.options
    const { lane } = s
    const generation = ++s.generation
    s.retry = undefined
    const task = this.pool.runLane({
      lane: lane.index,
      requests: lane.requests,
      completions: lane.completions,
      stats: lane.stats,
      handler: o.handler,
      codec: o.codec,
      retry: {
        attempts: o.attempts,
        backoffMs: o.backoffMs,
        maxBackoffMs: o.maxBackoffMs,
        jitter: o.jitter,
      },
    })
    s.task = task
    let ready = false
    let timedOut = false
    // A setup that never finishes would hold the lane forever: end its worker.
    const timer = setTimeout(() => {
      timedOut = true
      task.kill()
    }, o.startTimeoutMs)
    task.control.ready().then(
      () => {
        ready = true
        clearTimeout(timer)
        if (generation !== s.generation) return
        s.setupFailures = 0
        if (!s.established) {
          s.established = true
          s.launched.resolve()
        }
      },
      () => {},
    )
    task.exit.then(
      (exit) => {
        clearTimeout(timer)
        if (generation !== s.generation) return
        switch (exit.kind) {
          case 'drained':
            if (exit.teardownError) {
              this.host.events.error(
                new ConveyorError(
                  'TEARDOWN_FAILED',
                  `lane ${lane.index}: teardown() of handler module ${o.handler} threw: ${exit.teardownError.message}`,
                ),
              )
            }
            return this.end(s)
          case 'aborted':
            return this.end(s)
          case 'handler-invalid':
          case 'setup-failed':
            return this.setupFailed(
              s,
              new ConveyorError(
                exit.kind === 'handler-invalid' ? 'HANDLER_INVALID' : 'SETUP_FAILED',
                exit.message,
              ),
            )
        }
      },
      (err: Error) => {
        clearTimeout(timer)
        if (generation !== s.generation) return
        if (timedOut && !ready) {
          return this.setupFailed(
            s,
            new ConveyorError(
              'START_TIMEOUT',
              `the setup() of handler module ${o.handler} did not finish within startTimeoutMs (${o.startTimeoutMs} ms); its worker was ended`,
            ),
          )
        }
        this.crashed(s, err)
      },
    )
  }

  /** The task's handler could not be set up: fail the launch, or retry after a delay. */
  private setupFailed(s: Supervised, error: ConveyorError): void {
    if (!s.established) {
      // At launch the user is there to hear it, and a restart loop would hide the cause.
      const code = error.code === 'START_TIMEOUT' ? 'START_TIMEOUT' : 'HANDLER_INVALID'
      this.end(s, new ConveyorError(code, error.message, { cause: error }))
      return
    }
    s.restarts++
    // Harmless after a setup that returned; needed after a kill that raced a late ready.
    s.lane.recoverFromCrash(this.options.attempts, error)
    this.retryLater(s, error)
  }

  /** The worker died: settle what it finished, judge the suspect, restart on a new worker. */
  private crashed(s: Supervised, err: Error): void {
    const { lane } = s
    if (!s.established) {
      this.end(
        s,
        new ConveyorError(
          'HANDLER_INVALID',
          `a worker died while loading or setting up handler module ${this.options.handler}: ${err.message}`,
          { cause: err },
        ),
      )
      return
    }
    if (this.host.phase() === 'stopped') {
      this.end(s)
      return
    }
    s.restarts++
    const diedInSetup = lane.statSlots[Stat.READY] !== 1
    lane.recoverFromCrash(this.options.attempts, err)
    this.host.events.emit('worker-exit', { lane: lane.index, error: err })
    if (!diedInSetup) {
      this.restart(s)
      return
    }
    this.retryLater(
      s,
      new ConveyorError(
        'WORKER_DIED',
        `lane ${lane.index}: a worker died before its handler was set up (${err.message})`,
        { cause: err },
      ),
    )
  }

  /**
   * Workers that fail before reading a record (a database down, say) are replaced after a
   * growing delay, and no message is blamed for it.
   */
  private retryLater(s: Supervised, error: ConveyorError): void {
    const phase = this.host.phase()
    if (phase === 'stopped' || (phase === 'stopping' && s.lane.outstanding === 0)) {
      this.end(s)
      return
    }
    const delayMs = Math.min(SETUP_RETRY_MAX_MS, SETUP_RETRY_MS * 2 ** s.setupFailures++)
    error.message = `${error.message}; lane ${s.lane.index} retries in ${delayMs} ms`
    this.host.events.error(error)
    s.retry = setTimeout(() => {
      s.retry = undefined
      const now = this.host.phase()
      if (now === 'running' || now === 'stopping') this.restart(s)
      else this.end(s)
    }, delayMs)
  }

  private restart(s: Supervised): void {
    this.startTask(s)
    this.host.restarted(s.lane)
  }

  /** The lane's task ended for good. A launch still pending fails with `error`. */
  private end(s: Supervised, error?: Error): void {
    if (s.retry) clearTimeout(s.retry)
    s.retry = undefined
    if (!s.established) {
      s.launched.reject(
        error ?? new ConveyorError('QUEUE_STOPPED', 'the queue stopped before the lane was ready'),
      )
    }
    if (s.ended) return
    s.ended = true
    s.finish()
    // A lane that drained holds nothing for stop() to collect: forget it (resizes come and go).
    s.lane.drain()
    if (s.lane.outstanding === 0 && this.host.phase() === 'running') this.registry.delete(s.lane)
  }
}
