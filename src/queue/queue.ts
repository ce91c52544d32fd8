import { EventEmitter } from 'node:events'
import { type Codec, loadCodec } from '../codec/index.js'
import { ConveyorError } from '../errors.js'
import { Tag } from '../lane/protocol.js'
import { LanePool } from '../pool/lane-pool.js'
import { maxPayloadBytes } from '../ring/index.js'
import { Aborts, abortError } from './abort.js'
import { Admission } from './admission.js'
import { Autoscaler } from './autoscaler.js'
import { Backpressure } from './backpressure.js'
import { batchCall, type PushCall, pushCall, type RunCall, runCall } from './call-options.js'
import {
  type ConsumeOptions,
  type ConsumeResult,
  consume,
  type Envelope,
  type EnvelopeSource,
} from './consume.js'
import { Transition } from './dispatcher.js'
import { BUDGET_TICK_MS, DrainBudget } from './drain-budget.js'
import { EventFence, type QueueEvents } from './events.js'
import { Lane, type LaneOutcomes } from './lane.js'
import {
  Measurements,
  type MetricsOptions,
  type QueueMetrics,
  type SampleObserver,
} from './metrics.js'
import { type QueueOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { type BatchCallbacks, type RunPending, UNTRACKED } from './pending.js'
import { LatencySampler, type QueueStats } from './stats.js'
import { type Phase, Supervisor } from './supervisor.js'
import { type WatchHost, watch } from './watcher.js'

export interface RunOptions {
  /** With ordering 'key': messages with the same key are handled in push order. */
  key?: string | number
  /**
   * Aborts the call: run() rejects at once with an AbortError; a message not started yet is
   * skipped, a running one sees `ctx.signal` abort in its worker.
   */
  signal?: AbortSignal
}

export interface PushOptions<In = unknown> {
  /** With ordering 'key': messages with the same key are handled in push order. */
  key?: string | number
  /** Called once the handler has finished with the message. */
  ack?: () => void
  /**
   * Called if the message is dead-lettered (with the handler's last error), or skipped
   * because its signal fired (with an AbortError).
   */
  nack?: (error: Error, message: In) => void
  /**
   * Aborts the message: push() rejects with an AbortError if the message still waits for
   * room (it never entered the queue); once in a lane, it is skipped if not started yet, or
   * its handler sees `ctx.signal` abort; it then settles as aborted (nack, counted).
   */
  signal?: AbortSignal
}

export interface PushManyOptions<In = unknown> {
  /**
   * With ordering 'key': one key for every message, or each message's key (`undefined`:
   * none). A function is called once per message, in order, before anything is written.
   */
  key?: string | number | ((message: In, index: number) => string | number | undefined)
  /** Called once per message the handler finished with, with its index in `messages`. */
  ack?: (index: number) => void
  /** Called per message dead-lettered or skipped for the signal, with its index. */
  nack?: (error: Error, index: number, message: In) => void
  /** Aborts the whole batch, as push()'s signal does each message. */
  signal?: AbortSignal
}

export interface StopReport<In = unknown> {
  /** Messages accepted into lanes (push, pushMany, run). */
  pushed: number
  /** Handled: the handler returned (or resolved). */
  completed: number
  /** Handler attempts that threw (a retried message may count more than once). */
  failed: number
  /** Pushed messages given up on after their last attempt. */
  deadLettered: number
  /** run() calls rejected with the handler's error or a worker's death. */
  rejected: number
  /** Messages skipped (or given up) because their signal fired. */
  aborted: number
  /**
   * Messages accepted but never handled, decoded (raw bytes if the codec cannot decode them),
   * lane by lane in lane order: nack or persist them.
   */
  unprocessed: In[]
  /** Whether every lane drained before the timeout. */
  drained: boolean
  durationMs: number
}

type State = 'idle' | Phase

/** Pushes accepted between two looks at the lanes' fill (for 'pause'/'resume'). */
const PRESSURE_EVERY = 64
/** How long stop() waits for workers told to abort before it ends them. */
const ABORT_GRACE_MS = 1000

/**
 * The public queue: go-zero's core/queue over threads and shared memory. A facade and a state
 * machine (idle → starting → running → stopping → stopped) over one concept per file:
 * admission (push → lane), backpressure, lanes, their watchers, their supervisor, events.
 *
 * `In` is what push()/run() take (the handler's message), `Out` what run() resolves with.
 */
export class Queue<In = unknown, Out = unknown> extends EventEmitter<QueueEvents<In>> {
  private readonly options: ResolvedOptions
  private state: State = 'idle'
  private readonly events = new EventFence(this as EventEmitter)
  private codec!: Codec
  private lanes: Lane[] = []
  private pool: LanePool | undefined
  private supervisor: Supervisor | undefined
  private admission: Admission | undefined
  private aborts: Aborts | undefined
  private readonly backpressure: Backpressure
  private resizing: Promise<void> = Promise.resolve()
  private pressureClock = 0
  private readonly latency = new LatencySampler()
  private readonly measurements = new Measurements(this.events)
  private readonly counts = {
    pushed: 0,
    completed: 0,
    failed: 0,
    deadLettered: 0,
    rejected: 0,
    aborted: 0,
  }
  private startedAt = 0
  private recent = { at: 0, completed: 0, rate: 0 }
  private timer: NodeJS.Timeout | undefined
  private budgetTimer: NodeJS.Timeout | undefined
  private readonly budget: DrainBudget
  /** threads: { min, max }: the thread controller's driver. */
  private autoscaler: Autoscaler | undefined
  /** Why the controller asked for the resize in progress, for its 'threads' event. */
  private resizeReason: string | undefined
  private starting: Promise<void> | undefined
  private stopping: Promise<StopReport<In>> | undefined
  /** Resolves when stop() is first called: cancels a start, ends consume() loops. */
  private readonly stopRequested: Promise<void>
  private requestStop!: () => void
  private readonly outcomes: LaneOutcomes
  private idleWaiters: (() => void)[] = []

  constructor(options: QueueOptions<In, Out>) {
    super()
    this.options = resolveOptions(options)
    this.budget = new DrainBudget(this.options.drainBudgetMs)
    this.stopRequested = new Promise((resolve) => {
      this.requestStop = resolve
    })
    this.backpressure = new Backpressure(
      this.options.high,
      this.options.low,
      () => this.fill(),
      this.events,
    )
    const { counts, events, measurements } = this
    this.outcomes = {
      completed: (n) => {
        counts.completed += n
      },
      sampled: (lane, latencyMs, waitMs, serviceMs) => {
        this.latency.add(latencyMs)
        measurements.sampled(lane, latencyMs, waitMs, serviceMs)
      },
      sampleDropped: () => measurements.sampleDropped(),
      fence: events,
      failed: (error, message, attempt) => {
        counts.failed++
        if (events.heard('failed')) events.emit('failed', error, message, attempt)
      },
      deadLettered: (error, message) => {
        counts.deadLettered++
        events.emit('dead-letter', { message, error })
      },
      rejected: () => {
        counts.rejected++
      },
      aborted: () => {
        counts.aborted++
      },
    }
  }

  /**
   * Starts the workers; resolves once every lane's handler ran its setup. Rejects with
   * HANDLER_INVALID, START_TIMEOUT (startTimeoutMs), or QUEUE_STOPPED (stop() was called).
   */
  start(): Promise<void> {
    if (this.state !== 'idle') {
      return Promise.reject(
        new ConveyorError(
          'QUEUE_STOPPED',
          `start() may be called once; the queue is ${this.state}`,
        ),
      )
    }
    this.state = 'starting'
    this.starting = this.startLanes()
    return this.starting
  }

  private async startLanes(): Promise<void> {
    const o = this.options
    try {
      this.codec = await loadCodec(o.codec)
      if (this.stopping) throw this.stoppedError()
      this.lanes = Array.from({ length: o.threads }, (_, i) => this.makeLane(i))
      this.admission = new Admission(
        this.codec,
        o.ordering === 'key',
        o.maxWaiting,
        maxPayloadBytes(o.laneBytes),
        {
          refusal: () => this.notRunning(),
          accepted: (lane, count) => this.accepted(lane, count),
          waitingGrew: () => this.backpressure.check(this.admission!.waitingCount),
        },
        this.lanes,
      )
      this.aborts = new Aborts(this.admission)
      // pause() may come before start(): pushes then wait from the first one.
      this.updateHeld()
      this.pool = new LanePool({ ...o, onError: (err) => this.events.error(err) })
      this.supervisor = new Supervisor(o, this.pool, {
        phase: () => (this.state === 'idle' ? 'starting' : this.state),
        events: this.events,
        restarted: (lane) => this.restarted(lane),
      })
      const supervisor = this.supervisor
      await Promise.race([
        Promise.all(this.lanes.map((lane) => supervisor.launch(lane))),
        this.stopRequested.then(() => {
          throw this.stoppedError()
        }),
      ])
    } catch (err) {
      this.state = 'stopped'
      await this.pool?.destroy()
      throw err
    }
    this.startedAt = performance.now()
    this.recent = { at: this.startedAt, completed: 0, rate: 0 }
    this.measurements.reset()
    // Samples the recent rate; also keeps the process alive while the queue runs (a pending
    // Atomics.waitAsync does not).
    this.timer = setInterval(() => this.sampleRate(), 1000)
    if (o.drainBudgetMs !== undefined) {
      // Unref'd: the 1 s timer above keeps the process alive while the queue runs.
      this.budgetTimer = setInterval(() => this.budget.update(this.lanes), BUDGET_TICK_MS).unref()
    }
    this.state = 'running'
    this.admission!.setOpen(true)
    this.events.emit('threads', this.lanes.length)
    if (o.adaptive) {
      this.autoscaler = new Autoscaler(o.adaptive, this.lanes.length, {
        lanes: () => this.lanes,
        finished: () => {
          const c = this.counts
          return c.completed + c.deadLettered + c.rejected + c.aborted
        },
        waiting: () => this.admission?.waitingCount ?? 0,
        resize: (threads) => this.resize(threads),
        decided: (decision) => {
          this.resizeReason = decision.reason
        },
        failed: (err) => this.events.error(err),
      })
      this.autoscaler.start()
    }
  }

  private makeLane(index: number): Lane {
    const lane = new Lane(index, this.options.laneBytes, this.codec, this.outcomes)
    this.budget.added(lane, this.lanes)
    return lane
  }

  /**
   * Accepts one message: resolves once it is in a lane (at once when there is room, later
   * when lanes are full or the queue is paused). Rejects with INVALID_OPTION, ENCODE_FAILED,
   * MESSAGE_TOO_LARGE, QUEUE_FULL, QUEUE_STOPPED or QUEUE_NOT_STARTED; nothing is enqueued then.
   */
  push(message: In, options?: PushOptions<In>): Promise<void> {
    let call: PushCall
    try {
      call = pushCall(options)
    } catch (err) {
      return Promise.reject(err)
    }
    const admission = this.admission
    if (!admission) return Promise.reject(this.notRunning())
    if (call.signal === undefined)
      return admission.enqueue(message, 0, call.key, call.pending, true)
    const { pending, signal } = call
    if (signal.aborted) return Promise.reject(abortError(signal))
    this.aborts!.attach(signal, pending)
    return admission.enqueue(message, 0, call.key, pending, true, pending).catch((err) => {
      pending.detach?.()
      throw err
    })
  }

  /**
   * Accepts many messages in one call: one encode loop, one write loop, one promise. Each
   * message settles as a push() would (ack/nack get its index). Nothing is written unless
   * every message encodes and fits; if the queue stops (or the signal fires) while part of
   * the batch waits for room, the rejection's `accepted` says how many went in.
   */
  pushMany(messages: readonly In[], options?: PushManyOptions<In>): Promise<void> {
    let call: ReturnType<typeof batchCall>
    try {
      call = batchCall(messages, options)
    } catch (err) {
      return Promise.reject(err)
    }
    const admission = this.admission
    if (!admission) return Promise.reject(this.notRunning())
    const { signal, callbacks, keys } = call
    if (signal === undefined) {
      return admission.enqueueMany(messages, keys, callbacks, undefined)
    }
    if (signal.aborted) return Promise.reject(abortError(signal))
    const batch = this.aborts!.batch(signal, callbacks ?? NO_CALLBACKS)
    return admission
      .enqueueMany(messages, keys, batch.pendingAt, batch)
      .then(batch.written, batch.refused)
  }

  /**
   * Handles one message and resolves with the handler's return value (or its error). With
   * a `signal`, rejects with an AbortError as soon as it fires.
   */
  run(message: In, options?: RunOptions): Promise<Out> {
    let call: RunCall
    try {
      call = runCall(options)
    } catch (err) {
      return Promise.reject(err)
    }
    const admission = this.admission
    if (!admission) return Promise.reject(this.notRunning())
    const { key, signal } = call
    if (signal?.aborted) return Promise.reject(abortError(signal))
    return new Promise<Out>((resolve, reject) => {
      const pending: RunPending = {
        kind: 'run',
        resolve: resolve as (v: unknown) => void,
        reject,
        ...UNTRACKED,
        tracked: signal !== undefined,
      }
      if (signal) this.aborts!.attach(signal, pending)
      admission.enqueue(message, Tag.WANTS_RESULT, key, pending, false, pending).catch((err) => {
        pending.detach?.()
        reject(err)
      })
    })
  }

  private accepted(lane: Lane, count: number): void {
    this.counts.pushed += count
    if (!lane.watching) this.watch(lane)
    if ((this.pressureClock += count) >= PRESSURE_EVERY) {
      this.pressureClock = 0
      this.backpressure.check(this.admission!.waitingCount)
    }
  }

  /** One host for every watcher loop: a lane goes busy often, and needs no new closures. */
  private readonly watchHost: WatchHost = {
    progressed: () => {
      const admission = this.admission!
      if (admission.waitingCount > 0) admission.flush()
      if (this.backpressure.underPressure) this.backpressure.check(admission.waitingCount)
      this.checkIdle()
    },
    failed: (err) => this.events.error(err),
  }

  private watch(lane: Lane): void {
    watch(lane, this.watchHost)
  }

  private restarted(lane: Lane): void {
    if (lane.needsWatching) this.watch(lane)
    this.admission?.flush()
    this.checkIdle()
  }

  /**
   * Resolves once nothing waits for room and nothing is in a lane: every message accepted so
   * far is settled (at once if that is so now). Not the same as consume() resolving, which
   * means its messages were pushed; they may still be in lanes.
   */
  onIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private isIdle(): boolean {
    if (this.state === 'stopped') return true
    return (this.admission?.waitingCount ?? 0) === 0 && (this.supervisor?.inFlight() ?? 0) === 0
  }

  private checkIdle(): void {
    if (this.idleWaiters.length > 0 && this.isIdle()) {
      for (const resolve of this.idleWaiters.splice(0)) resolve()
    }
  }

  /** Holds new pushes (they wait) until resume(); workers keep draining the lanes. */
  pause(): void {
    this.backpressure.pause()
    this.updateHeld()
  }

  resume(): void {
    if (!this.backpressure.resume()) return
    this.updateHeld()
    this.admission?.flush()
  }

  private updateHeld(): void {
    this.admission?.setHeld(this.backpressure.paused)
  }

  get isPaused(): boolean {
    return this.backpressure.paused
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
   * or the queue stops (even if the source never answers); items pulled but refused by a
   * stopping queue are nacked (envelopes) or returned in `refused` (plain items). Any other
   * push error rejects, after nacking. Resolving means everything was pushed, not handled:
   * the messages may still be in lanes.
   */
  consume(
    source: EnvelopeSource<In>,
    options?: ConsumeOptions,
  ): Promise<ConsumeResult<Envelope<In>>>
  consume(
    source: AsyncIterable<In> | Iterable<In>,
    options?: ConsumeOptions & { envelopes?: false },
  ): Promise<ConsumeResult<In>>
  consume(
    source: AsyncIterable<Envelope<In>> | Iterable<Envelope<In>>,
    options: ConsumeOptions & { envelopes: true },
  ): Promise<ConsumeResult<Envelope<In>>>
  consume(
    source: AsyncIterable<unknown> | Iterable<unknown>,
    options?: ConsumeOptions,
  ): Promise<ConsumeResult<unknown>> {
    const admission = this.admission
    if (!admission || this.state !== 'running') return Promise.reject(this.notRunning())
    return consume(
      {
        push: (value, envelope) => this.push(value as In, envelope),
        stopping: this.stopRequested,
        turns: admission.turns,
        events: this.events,
      },
      source,
      options,
    )
  }

  /** Calls every worker's onEvent(event); resolves once all have run it. */
  async broadcast(event: unknown): Promise<void> {
    if (this.state !== 'running') throw this.notRunning()
    await this.supervisor!.broadcast(this.lanes, event)
  }

  stats(): QueueStats {
    this.budget.measureAll(this.lanes)
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
        busyMs: s[2],
        restarts: this.supervisor?.restartsOf(lane) ?? 0,
      }
    })
    return {
      ...c,
      inFlight: lanes.reduce((n, l) => n + l.inFlight, 0),
      waiting: this.admission?.waitingCount ?? 0,
      backlogBytes: lanes.reduce((n, l) => n + l.backlogBytes, 0),
      rate: { total: uptimeMs > 0 ? (c.completed * 1000) / uptimeMs : 0, recent: this.recent.rate },
      latencyMs: this.latency.percentiles(),
      drainEstimateMs: this.budget.estimateMs(this.lanes),
      autoscale: this.autoscaler && {
        ...this.autoscaler.view(),
        decisions: this.autoscaler.log().slice(-20),
      },
      threads: this.lanes.length,
      uptimeMs,
      lanes,
    }
  }

  /**
   * Timings of sampled messages (one in 16 per lane), as histogram summaries in milliseconds:
   * push → done latency, queue wait (until the handler started) and service time (the handler,
   * every attempt). They cover the window since start() or the last `{ reset: true }`, which
   * starts a new one after this read. Throws INVALID_OPTION for options of the wrong shape.
   */
  metrics(options?: MetricsOptions): QueueMetrics {
    return this.measurements.snapshot(options)
  }

  /**
   * Calls `observer` with each sampled message's timings as they arrive (one message in 16
   * per lane), e.g. to feed a metrics library's histograms. It runs on the main thread while
   * the queue settles messages: keep it cheap. One that throws is reported on 'error' and
   * stays subscribed. Returns the function that unsubscribes it.
   */
  onSample(observer: SampleObserver): () => void {
    return this.measurements.subscribe(observer)
  }

  /**
   * Stops in go-zero's order: pushes are refused (QUEUE_STOPPED), lanes drain until empty or
   * `timeoutMs`, handlers' teardown runs, workers end. Whatever was not handled comes back in
   * the report's `unprocessed`, decoded. A start() in progress is cancelled (it rejects with
   * QUEUE_STOPPED); a resize() in progress does not hold stop() up.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<StopReport<In>> {
    if (this.state === 'idle') return Promise.reject(this.notRunning())
    const timeoutMs = options.timeoutMs ?? 30_000
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      return Promise.reject(
        new ConveyorError(
          'INVALID_OPTION',
          `stop(): timeoutMs must be a number ≥ 0, got ${String(timeoutMs)}`,
        ),
      )
    }
    this.requestStop()
    if (!this.stopping) {
      if (this.state === 'starting') this.stopping = this.cancelStart()
      // start() failed: it already ended every worker, and no message was accepted.
      else if (this.state === 'stopped') this.stopping = Promise.resolve(this.emptyReport(0))
      else this.stopping = this.stopLanes(timeoutMs)
    }
    return this.stopping
  }

  private async cancelStart(): Promise<StopReport<In>> {
    const started = performance.now()
    await this.starting?.catch(() => {})
    // The start won the race after all: stop as usual.
    if (this.state === 'running') return this.stopLanes(0)
    return this.emptyReport(performance.now() - started)
  }

  private emptyReport(durationMs: number): StopReport<In> {
    return { ...this.counts, unprocessed: [], drained: true, durationMs }
  }

  private async stopLanes(timeoutMs: number): Promise<StopReport<In>> {
    const started = performance.now()
    this.state = 'stopping'
    this.autoscaler?.stop()
    this.admission!.setOpen(false)
    const supervisor = this.supervisor!
    this.admission!.rejectWaiting(() => this.notRunning())
    supervisor.closeAll()
    let drained = await settlesWithin(supervisor.allFinished(), timeoutMs)
    if (!drained) {
      supervisor.abortAll()
      await settlesWithin(supervisor.allFinished(), ABORT_GRACE_MS)
    }
    this.state = 'stopped'
    await this.pool?.destroy()
    clearInterval(this.timer)
    clearInterval(this.budgetTimer)
    const unprocessed = supervisor.takeUnprocessed() as In[]
    if (unprocessed.length > 0) drained = false
    this.checkIdle()
    return { ...this.counts, unprocessed, drained, durationMs: performance.now() - started }
  }

  /** `await using queue = createQueue(…)`: stops the queue (default timeout) at scope exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.state !== 'idle') await this.stop()
  }

  /**
   * Changes the number of lanes (and worker threads) while running, up to the pool's
   * maximum (threads.max, or the CPUs this process may use). Removed lanes drain first. With
   * ordering 'key', the few keys whose lane changes (a consistent hash moves only those of the
   * added or removed lanes) wait until their old lane has finished their earlier messages;
   * other keys are not held: per-key order holds without a stall of the whole queue.
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
    if (this.state !== 'running') throw this.notRunning()
    if (threads === this.lanes.length) return
    const supervisor = this.supervisor!
    const admission = this.admission!
    const before = this.lanes
    let removed: Lane[] = []
    if (threads > before.length) {
      const added = Array.from({ length: threads - before.length }, (_, i) =>
        this.makeLane(before.length + i),
      )
      try {
        await Promise.all(added.map((lane) => supervisor.launch(lane)))
      } catch (err) {
        void supervisor.retire(added)
        throw err
      }
      // stop() began meanwhile: it closed the new lanes too; don't dispatch to them.
      if (this.state !== 'running') throw this.notRunning()
      this.lanes = [...before, ...added]
    } else {
      removed = before.slice(threads)
      this.lanes = before.slice(0, threads)
    }
    // With ordering 'key', the keys that change lane (few: the hash is consistent) wait until
    // their old lane has finished what it held at this switch; every other key goes on.
    const transition = this.options.ordering === 'key' ? new Transition(before) : undefined
    // Nothing new lands in a removed lane from here on.
    admission.setLanes(this.lanes, transition)
    const retiring = supervisor.retire(removed)
    if (transition) {
      while (!transition.done && this.state === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      if (this.state === 'running') admission.setLanes(this.lanes)
    }
    await retiring
    const reason = this.resizeReason
    this.resizeReason = undefined
    this.events.emit('threads', this.lanes.length, reason)
    admission.flush()
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

  private stoppedError(): ConveyorError {
    return new ConveyorError('QUEUE_STOPPED', 'stop() was called before start() finished')
  }

  private notRunning(): ConveyorError {
    return this.state === 'idle' || this.state === 'starting'
      ? new ConveyorError('QUEUE_NOT_STARTED', 'call and await queue.start() before pushing')
      : new ConveyorError(
          'QUEUE_STOPPED',
          'the queue is stopping or stopped: it accepts no more messages',
        )
  }
}

const NO_CALLBACKS: BatchCallbacks = {
  kind: 'many',
  ack: undefined,
  nack: undefined,
  tracked: false,
  detach: undefined,
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
