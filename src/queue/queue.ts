import { EventEmitter } from 'node:events'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { type Codec, loadCodec } from '../codec/index.js'
import { ConveyorError, isConveyorError } from '../errors.js'
import { Stat, Tag } from '../lane/protocol.js'
import { LanePool, type LaneTask } from '../pool/lane-pool.js'
import { Dispatcher } from './dispatcher.js'
import { Lane, type LaneEvents } from './lane.js'
import { type QueueOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { nackOf, type Pending } from './pending.js'
import { LatencySampler, type QueueStats } from './stats.js'

export interface PushOptions {
  /** With ordering 'key': messages with the same key are handled in push order. */
  key?: string | number
  /** Called once the handler has finished with the message. */
  ack?: () => void
  /** Called if the message is dead-lettered. */
  nack?: (error: Error) => void
}

export interface DeadLetter {
  message: unknown
  error: Error
}

export interface StopReport {
  pushed: number
  completed: number
  failed: number
  deadLettered: number
  rejected: number
  /** Messages accepted but never handled, decoded, in lane order: nack or persist them. */
  unprocessed: unknown[]
  /** Whether every lane drained before the timeout. */
  drained: boolean
  durationMs: number
}

export interface QueueEvents {
  /** A handler attempt threw (every attempt). */
  failed: [error: Error, message: unknown, attempt: number]
  /** A message gave up: its last attempt threw, or workers kept dying on it. */
  'dead-letter': [letter: DeadLetter]
  /** Sources should stop fetching: pause() was called or the lanes crossed the high watermark. */
  pause: [info: { reason: 'user' | 'backlog'; fill: number }]
  /** Sources may fetch again. */
  resume: [info: { reason: 'user' | 'backlog'; fill: number }]
  /** A lane's worker died and was replaced; its lane resumed at the release cursor. */
  'worker-exit': [info: { lane: number; error: Error }]
  /** Worker threads now serving lanes. */
  threads: [count: number]
  error: [error: Error]
}

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped'

interface Waiting {
  wire: string | Uint8Array
  tag: number
  key: string | number | undefined
  pending: Pending | undefined
  resolve: () => void
  reject: (error: Error) => void
}

const RESOLVED = Promise.resolve()
/** Event-loop turns to poll for a run() result before parking on RELEASE (µs each). */
const POLL_TURNS = 64
const PRESSURE_EVERY = 64
/** First delay before restarting a lane whose worker died during setup; doubles, capped. */
const SETUP_RETRY_MS = 50
const SETUP_RETRY_MAX_MS = 5_000

/**
 * The public queue: go-zero's core/queue over threads and shared memory. Producers push;
 * lanes carry messages to Piscina workers; watchers turn ring progress into acks.
 */
export class Queue extends EventEmitter<QueueEvents> {
  readonly options: ResolvedOptions
  private state: State = 'idle'
  private codec!: Codec
  private lanes: Lane[] = []
  /** Pushes are held while a resize with key ordering waits for lanes to empty. */
  private holds = 0
  private flushing = false
  private resizing: Promise<void> = Promise.resolve()
  private pool: LanePool | undefined
  private dispatcher!: Dispatcher
  private readonly waiting: Waiting[] = []
  private paused = false
  private pressured = false
  private pressureClock = 0
  private readonly latency = new LatencySampler()
  private counts = { pushed: 0, completed: 0, failed: 0, deadLettered: 0, rejected: 0 }
  private startedAt = 0
  private recent = { at: 0, completed: 0, rate: 0 }
  private timer: NodeJS.Timeout | undefined
  private stopping: Promise<StopReport> | undefined
  private readonly laneEvents: LaneEvents

  constructor(options: QueueOptions) {
    super()
    this.options = resolveOptions(options)
    const counts = this.counts
    // User code (callbacks, listeners) runs inside a lane's drain: whatever it throws is
    // reported, and never unwinds the drain half-way (that would lose settlements).
    const guarded = (fn: () => void) => {
      try {
        fn()
      } catch (err) {
        this.laneEvents.callbackThrew(err)
      }
    }
    this.laneEvents = {
      completed: (n) => {
        counts.completed += n
      },
      latency: (ms) => this.latency.add(ms),
      failed: (error, message, attempt) => {
        counts.failed++
        if (this.listenerCount('failed') > 0)
          guarded(() => this.emit('failed', error, message, attempt))
      },
      deadLettered: (error, message, pending) => {
        counts.deadLettered++
        const nack = nackOf(pending)
        if (nack) guarded(() => nack(error))
        guarded(() => this.emit('dead-letter', { message, error }))
      },
      callbackThrew: (err) => {
        const error = err instanceof Error ? err : new Error(String(err))
        if (this.listenerCount('error') > 0) this.emit('error', error)
        else
          process.emitWarning(
            `conveyor: a callback or event listener threw: ${error.message}`,
            'ConveyorWarning',
          )
      },
      rejected: () => {
        counts.rejected++
      },
    }
  }

  /** Starts the workers; resolves once every lane's handler ran its setup. */
  async start(): Promise<void> {
    if (this.state !== 'idle') {
      throw new ConveyorError(
        'QUEUE_STOPPED',
        `start() may be called once; the queue is ${this.state}`,
      )
    }
    this.state = 'starting'
    const o = this.options
    try {
      this.codec = await loadCodec(o.codec)
      this.lanes = Array.from(
        { length: o.threads },
        (_, i) => new Lane(i, o.laneBytes, this.codec, this.laneEvents),
      )
      this.dispatcher = new Dispatcher(this.lanes, o.ordering === 'key')
      this.pool = new LanePool({ ...o, onError: (err) => this.emitError(err) })
      for (const lane of this.lanes) this.startLane(lane)
      await Promise.all(this.lanes.map((lane) => whenReady(lane.task!, o.handler)))
    } catch (err) {
      this.state = 'stopped'
      await this.pool?.destroy()
      throw err
    }
    this.startedAt = performance.now()
    this.recent = { at: this.startedAt, completed: 0, rate: 0 }
    // Samples the recent rate; also keeps the process alive while the queue runs (a pending
    // Atomics.waitAsync does not).
    this.timer = setInterval(() => this.sampleRate(), 1000)
    this.state = 'running'
    this.emit('threads', this.lanes.length)
  }

  /**
   * Accepts one message: resolves once it is in a lane (at once when there is room, later
   * when lanes are full or the queue is paused). Rejects with ENCODE_FAILED,
   * MESSAGE_TOO_LARGE, QUEUE_FULL, QUEUE_STOPPED or QUEUE_NOT_STARTED; nothing is enqueued then.
   */
  push(message: unknown, options?: PushOptions): Promise<void> {
    let pending: Pending | undefined
    if (options !== undefined) {
      pending =
        options.nack === undefined
          ? options.ack
          : { kind: 'push', ack: options.ack, nack: options.nack }
    }
    return this.enqueue(message, 0, options?.key, pending)
  }

  /** Handles one message and resolves with the handler's return value (or its error). */
  run<T = unknown>(message: unknown, options?: { key?: string | number }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { kind: 'run', resolve: resolve as (v: unknown) => void, reject }
      this.enqueue(message, Tag.WANTS_RESULT, options?.key, pending).catch(reject)
    })
  }

  private enqueue(
    message: unknown,
    tag: number,
    key: string | number | undefined,
    pending: Pending | undefined,
  ): Promise<void> {
    if (this.state !== 'running') return Promise.reject(this.notRunning())
    let wire: string | Uint8Array
    try {
      wire = this.codec.toWire(message)
    } catch (err) {
      return Promise.reject(
        new ConveyorError(
          'ENCODE_FAILED',
          `codec '${this.codec.name}' could not encode the message: ${(err as Error).message}`,
          { cause: err },
        ),
      )
    }
    if (this.waiting.length === 0 && !this.paused && this.holds === 0) {
      try {
        let lane = this.dispatcher.pick(key)
        if (lane.write(wire, tag, pending)) {
          this.accepted(lane)
          return RESOLVED
        }
        if (this.options.ordering === 'none' || key === undefined) {
          lane = this.dispatcher.repick()
          if (lane.write(wire, tag, pending)) {
            this.accepted(lane)
            return RESOLVED
          }
        }
      } catch (err) {
        return Promise.reject(err)
      }
    }
    if (this.waiting.length >= this.options.maxWaiting) {
      return Promise.reject(
        new ConveyorError(
          'QUEUE_FULL',
          `${this.waiting.length} pushes already wait for room (maxWaiting): await push() before pushing more, or raise maxWaiting`,
        ),
      )
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ wire, tag, key, pending, resolve, reject })
      this.checkPressure()
    })
  }

  private accepted(lane: Lane): void {
    this.counts.pushed++
    if (!lane.watching) this.watch(lane)
    if (++this.pressureClock >= PRESSURE_EVERY) {
      this.pressureClock = 0
      this.checkPressure()
    }
  }

  /** Moves waiting pushes into lanes, in order, while there is room. */
  private flushWaiting(): void {
    // Re-entered through accepted() → watch(); the outer call keeps going, in order.
    if (this.flushing) return
    this.flushing = true
    try {
      this.flushInOrder()
    } finally {
      this.flushing = false
    }
  }

  private flushInOrder(): void {
    const { waiting } = this
    while (waiting.length > 0 && !this.paused && this.holds === 0 && this.state === 'running') {
      const w = waiting[0]
      const lane =
        this.options.ordering === 'key' && w.key !== undefined
          ? this.dispatcher.pick(w.key)
          : this.dispatcher.repick()
      try {
        if (!lane.write(w.wire, w.tag, w.pending)) return
      } catch (err) {
        waiting.shift()
        w.reject(err as Error)
        continue
      }
      waiting.shift()
      this.accepted(lane)
      w.resolve()
    }
  }

  /** Turns the progress of one lane into settlements until nothing is in flight there. */
  private watch(lane: Lane): void {
    lane.watching = true
    void this.watchLoop(lane)
  }

  private async watchLoop(lane: Lane): Promise<void> {
    let polls = 0
    try {
      while (lane.outstanding > 0) {
        const seen = lane.writer.released
        lane.drain()
        if (this.waiting.length > 0) this.flushWaiting()
        if (this.pressured) this.checkPressure()
        if (lane.outstanding === 0) break
        if (lane.awaitingResults > 0 && polls < POLL_TURNS) {
          // Someone awaits a result: a few event-loop turns of polling answer in µs, where
          // parking costs the latency of an Atomics.waitAsync wake-up (~20 µs here).
          polls++
          await nextTurn()
          continue
        }
        await lane.writer.waitForRelease(seen)
        polls = 0
      }
    } catch (err) {
      this.emitError(err as Error)
    } finally {
      lane.watching = false
    }
  }

  private checkPressure(): void {
    // Pushes waiting for room mean the lanes are as full as they get.
    const fill = this.waiting.length > 0 ? 1 : this.fill()
    if (!this.pressured && fill >= this.options.high) {
      this.pressured = true
      this.emit('pause', { reason: 'backlog', fill })
    } else if (this.pressured && fill <= this.options.low) {
      this.pressured = false
      this.emit('resume', { reason: 'backlog', fill })
    }
  }

  /** Holds new pushes (they wait) until resume(); workers keep draining the lanes. */
  pause(): void {
    if (this.paused) return
    this.paused = true
    this.emit('pause', { reason: 'user', fill: this.fill() })
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.emit('resume', { reason: 'user', fill: this.fill() })
    this.flushWaiting()
  }

  get isPaused(): boolean {
    return this.paused
  }

  /** Whether push() accepts messages now (started, not stopping). */
  get accepting(): boolean {
    return this.state === 'running'
  }

  private fill(): number {
    let used = 0
    let capacity = 0
    for (const lane of this.lanes) {
      used += lane.writer.backlog
      capacity += lane.writer.capacity
    }
    return capacity === 0 ? 0 : used / capacity
  }

  /**
   * Pulls messages from a source at the rate the lanes take them: at most `concurrency`
   * pushes (default 1) wait for room at once, so the source is never read further ahead.
   * With `envelopes: true` items are { value, key?, ack?, nack? }. Ends when the source ends
   * or the queue stops; items pulled but refused by a stopping queue are nacked (envelopes)
   * or returned in `refused` (plain items). Any other push error rejects, after nacking.
   */
  async consume(
    source: AsyncIterable<unknown> | Iterable<unknown>,
    options: { envelopes?: boolean; concurrency?: number } = {},
  ): Promise<{ consumed: number; refused: unknown[] }> {
    const concurrency = options.concurrency ?? 1
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new ConveyorError(
        'INVALID_OPTION',
        `consume(): concurrency must be an integer ≥ 1, got ${concurrency}`,
      )
    }
    let consumed = 0
    const refused: unknown[] = []
    let failure: Error | undefined
    const inFlight = new Set<Promise<void>>()
    for await (const item of source) {
      const envelope = options.envelopes ? (item as Envelope) : undefined
      const pushed = (envelope ? this.push(envelope.value, envelope) : this.push(item)).then(
        () => {
          consumed++
        },
        (err: Error) => {
          if (envelope) envelope.nack?.(err)
          else if (isConveyorError(err, 'QUEUE_STOPPED')) refused.push(item)
          failure ??= err
        },
      )
      inFlight.add(pushed)
      void pushed.then(() => inFlight.delete(pushed))
      if (inFlight.size >= concurrency) await Promise.race(inFlight)
      // Leaving the loop closes the source (its return()).
      if (failure) break
    }
    await Promise.all(inFlight)
    if (failure && !isConveyorError(failure, 'QUEUE_STOPPED')) throw failure
    return { consumed, refused }
  }

  /** Calls every worker's onEvent(event); resolves once all have run it. */
  async broadcast(event: unknown): Promise<void> {
    if (this.state !== 'running') throw this.notRunning()
    await Promise.all(
      this.lanes.map(({ task }) =>
        Promise.race([task!.control.broadcast(event), task!.exit.then(() => undefined)]),
      ),
    )
  }

  stats(): QueueStats {
    const now = performance.now()
    const uptimeMs = this.startedAt === 0 ? 0 : now - this.startedAt
    const c = this.counts
    const lanes = this.lanes.map((lane) => {
      const s = lane.statSlots
      return {
        lane: lane.index,
        handled: s[0],
        failed: s[1],
        inFlight: lane.outstanding,
        backlogBytes: lane.writer.backlog,
        capacityBytes: lane.writer.capacity,
        busy: uptimeMs > 0 ? Math.min(1, s[2] / uptimeMs) : 0,
        restarts: lane.restarts,
      }
    })
    return {
      ...c,
      inFlight: lanes.reduce((n, l) => n + l.inFlight, 0),
      waiting: this.waiting.length,
      backlogBytes: lanes.reduce((n, l) => n + l.backlogBytes, 0),
      rate: { total: uptimeMs > 0 ? (c.completed * 1000) / uptimeMs : 0, recent: this.recent.rate },
      latencyMs: this.latency.percentiles(),
      threads: this.lanes.length,
      uptimeMs,
      lanes,
    }
  }

  /**
   * Stops in go-zero's order: pushes are refused (QUEUE_STOPPED), lanes drain until empty or
   * `timeoutMs`, handlers' teardown runs, workers end. Whatever was not handled comes back in
   * the report's `unprocessed`, decoded.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<StopReport> {
    if (this.state === 'idle' || this.state === 'starting') return Promise.reject(this.notRunning())
    this.stopping ??= this.stopLanes(options.timeoutMs ?? 30_000)
    return this.stopping
  }

  private async stopLanes(timeoutMs: number): Promise<StopReport> {
    const started = performance.now()
    this.state = 'stopping'
    for (const w of this.waiting.splice(0)) w.reject(this.notRunning())
    for (const lane of this.lanes) lane.writer.close()
    await this.resizing
    const all = Promise.all(this.lanes.map((lane) => lane.finished))
    let drained = await settlesWithin(all, timeoutMs)
    if (!drained) {
      for (const lane of this.lanes) lane.abort()
      await settlesWithin(all, 1000)
    }
    this.state = 'stopped'
    await this.pool?.destroy()
    clearInterval(this.timer)
    const unprocessed = this.lanes.flatMap((lane) => lane.takeUnprocessed())
    if (unprocessed.length > 0) drained = false
    return { ...this.counts, unprocessed, drained, durationMs: performance.now() - started }
  }

  /**
   * Changes the number of lanes (and worker threads) while running, up to the pool's
   * maximum (threads.max, or the cores). Removed lanes drain first. With ordering 'key' the
   * key → lane map changes, so pushes are held until every lane is empty: per-key order holds.
   */
  resize(threads: number): Promise<void> {
    if (this.state !== 'running') return Promise.reject(this.notRunning())
    if (!Number.isInteger(threads) || threads < 1 || threads > this.options.maxThreads) {
      return Promise.reject(
        new ConveyorError(
          'INVALID_OPTION',
          `resize() takes a whole number of threads from 1 to ${this.options.maxThreads} (threads.max), got ${threads}`,
        ),
      )
    }
    const next = this.resizing.then(() => this.applyResize(threads))
    this.resizing = next.catch(() => {})
    return next
  }

  private async applyResize(threads: number): Promise<void> {
    if (threads === this.lanes.length || this.state !== 'running') return
    const byKey = this.options.ordering === 'key'
    if (byKey) {
      this.holds++
      while (this.lanes.some((lane) => lane.outstanding > 0) && this.state === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    }
    try {
      if (threads > this.lanes.length) {
        const added: Lane[] = []
        for (let i = this.lanes.length; i < threads; i++) {
          const lane = new Lane(i, this.options.laneBytes, this.codec, this.laneEvents)
          this.startLane(lane)
          added.push(lane)
        }
        await Promise.all(added.map((lane) => whenReady(lane.task!, this.options.handler)))
        this.lanes = [...this.lanes, ...added]
        this.dispatcher = new Dispatcher(this.lanes, byKey)
      } else {
        const removed = this.lanes.slice(threads)
        this.lanes = this.lanes.slice(0, threads)
        // Dispatch to the remaining lanes first, so nothing new lands in a closing one.
        this.dispatcher = new Dispatcher(this.lanes, byKey)
        for (const lane of removed) lane.writer.close()
        await Promise.all(removed.map((lane) => lane.finished))
      }
    } finally {
      if (byKey) this.holds--
    }
    this.emit('threads', this.lanes.length)
    this.flushWaiting()
  }

  private startLane(lane: Lane): void {
    const o = this.options
    const task = this.pool!.runLane({
      lane: lane.index,
      requests: lane.requests,
      completions: lane.completions,
      stats: lane.stats,
      handler: o.handler,
      codec: o.codec,
      attempts: o.attempts,
      backoffMs: o.backoffMs,
    })
    lane.task = task
    const generation = ++lane.generation
    task.exit.then(
      (exit) => {
        if (exit.kind === 'handler-invalid' && this.state !== 'starting') {
          this.emitError(new ConveyorError('HANDLER_INVALID', exit.message))
        }
        lane.finish()
      },
      (err: Error) => {
        if (generation !== lane.generation) return
        this.onLaneCrash(lane, err)
      },
    )
  }

  /** A worker died: settle what it finished, judge the suspect, restart the lane on a new one. */
  private onLaneCrash(lane: Lane, err: Error): void {
    if (this.state === 'starting' || this.state === 'stopped') {
      lane.finish()
      return
    }
    lane.restarts++
    const diedInSetup = lane.statSlots[Stat.READY] !== 1
    lane.statSlots[Stat.READY] = 0
    lane.recoverFromCrash(this.options.attempts, err)
    if (this.listenerCount('worker-exit') > 0)
      this.emit('worker-exit', { lane: lane.index, error: err })
    if (!diedInSetup) {
      lane.setupDeaths = 0
      this.restartLane(lane)
      return
    }
    // Workers that die before reading a record (setup failing: a database down, say) are
    // restarted with a growing delay, and no message is blamed for it.
    const delayMs = Math.min(SETUP_RETRY_MAX_MS, SETUP_RETRY_MS * 2 ** lane.setupDeaths++)
    this.emitError(
      new ConveyorError(
        'WORKER_DIED',
        `lane ${lane.index}: a worker died before its handler was set up (${err.message}); retrying in ${delayMs} ms`,
        { cause: err },
      ),
    )
    setTimeout(() => {
      if (this.state === 'running' || this.state === 'stopping') this.restartLane(lane)
      else lane.finish()
    }, delayMs)
  }

  private restartLane(lane: Lane): void {
    this.startLane(lane)
    if (lane.outstanding > 0 && !lane.watching) this.watch(lane)
    this.flushWaiting()
  }

  private sampleRate(): void {
    const now = performance.now()
    const completed = this.counts.completed
    this.recent = {
      at: now,
      completed,
      rate: ((completed - this.recent.completed) * 1000) / Math.max(1, now - this.recent.at),
    }
  }

  private notRunning(): ConveyorError {
    return this.state === 'idle' || this.state === 'starting'
      ? new ConveyorError('QUEUE_NOT_STARTED', 'call and await queue.start() before pushing')
      : new ConveyorError(
          'QUEUE_STOPPED',
          'the queue is stopping or stopped: it accepts no more messages',
        )
  }

  private emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }
}

interface Envelope extends PushOptions {
  value: unknown
}

async function whenReady(task: LaneTask, handler: string): Promise<void> {
  const exited = task.exit.then(
    (exit) => {
      if (exit.kind === 'handler-invalid') throw new ConveyorError('HANDLER_INVALID', exit.message)
      throw new ConveyorError(
        'HANDLER_INVALID',
        `the lane task for ${handler} ended before it started (${exit.kind})`,
      )
    },
    (err: Error) => {
      throw new ConveyorError(
        'HANDLER_INVALID',
        `a worker died while loading or setting up handler module ${handler}: ${err.message}`,
        { cause: err },
      )
    },
  )
  await Promise.race([task.control.ready(), exited])
  exited.catch(() => {})
}

function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}
