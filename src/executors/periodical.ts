import { functionOption, intervalOption, invalid, optionsObject } from '../check-options.js'
import { asError, ConveyorError, describeValue, emitConveyorWarning } from '../errors.js'

/** Writes one batch: the user's code. A throw (or a rejection) is reported, never swallowed. */
export type ExecuteBatch<T> = (batch: T[]) => void | Promise<void>

/**
 * Hears a batch whose execute() threw, with the items, so that nothing is lost silently.
 * Fenced: a throw (or a rejection) here becomes a process warning, and the executor goes on.
 */
export type ExecuteErrorHandler<T> = (error: Error, batch: T[]) => void | Promise<void>

/**
 * Collects items between executions (go-zero's TaskContainer). The executor calls
 * `validate(item)` once per add(), in call order, before the item is accepted or waits (a
 * throw rejects that add()); then `add(item)` for every validated item, in the same order.
 */
export interface BatchContainer<T> {
  validate?(item: T): void
  /** Keeps the item; true when the batch is full and should execute now. */
  add(item: T): boolean
  /** Hands over the items collected so far, leaving the container empty. */
  take(): T[]
  /** Items collected so far. */
  readonly size: number
}

export interface PeriodicalOptions<T> {
  /**
   * The longest an item waits in the container before its batch executes: a timer armed
   * when the first item arrives (unref'd: it never keeps the process alive).
   * @default 1000
   */
  intervalMs?: number
  /** Where failed batches go. Without it: a process warning, and the next flush(), wait() or close() rejects. */
  onError?: ExecuteErrorHandler<T>
  /**
   * The longest one execute() may take. One that has not settled by then fails its batch
   * (EXECUTE_TIMEOUT, to onError or the next flush/wait/close, like a throw) and the next
   * batch goes on: so flush(), wait() and close() are bounded even when the write hangs (a
   * connection that never answers). Its late outcome is ignored; if it did write, the items
   * were written and also reported failed — at least once, never lost.
   * @default 30000
   */
  executeTimeoutMs?: number
}

/** execute(batch) threw, and no onError took it: `batch` holds the items, `cause` the error. */
export class ExecuteError<T = unknown> extends ConveyorError {
  readonly batch: T[]

  constructor(label: string, batch: T[], cause: Error) {
    super(
      'EXECUTE_FAILED',
      `${label}: execute() failed on a batch of ${batch.length}: ${cause.message}`,
      { cause },
    )
    this.batch = batch
  }
}

interface WaitingAdd<T> {
  item: T
  resolve: () => void
}

/** The options every executor takes, beside its own (maxItems, maxBytes, sizeOf). */
export const PERIODICAL_OPTIONS = ['intervalMs', 'onError', 'executeTimeoutMs'] as const

/** The engine's share of a subclass's options: a new engine option reaches every executor. */
export function periodicalOptions<T>(
  options: PeriodicalOptions<T> | undefined,
): PeriodicalOptions<T> {
  const { intervalMs, onError, executeTimeoutMs } = options ?? {}
  return { intervalMs, onError, executeTimeoutMs }
}

/**
 * go-zero's PeriodicalExecutor: a container collects items; a batch executes when the
 * container says it is full, when `intervalMs` passed since its first item, or on flush() /
 * close(). One execution at a time, batches in the order their items were added.
 *
 * Back-pressure: while one batch executes, one more full batch may wait behind it; add()s
 * past that wait (in order) until the waiting batch starts. Memory is bounded by the batch
 * executing, at most two sealed batches (a full one and a flushed one), the container, and
 * the items of add()s that have not resolved yet — await add() and a fast producer is held.
 */
export class PeriodicalExecutor<T> implements AsyncDisposable {
  readonly #label: string
  readonly #container: BatchContainer<T>
  readonly #execute: ExecuteBatch<T>
  readonly #intervalMs: number
  readonly #executeTimeoutMs: number
  readonly #onError: ExecuteErrorHandler<T> | undefined

  /** Batches taken from the container, not started yet. */
  readonly #sealed: T[][] = []
  /** add()s held by back-pressure, in call order. */
  #waiting: WaitingAdd<T>[] = []
  #running = false
  #timer: NodeJS.Timeout | undefined
  /** Items add() took (accepted or waiting). */
  #added = 0
  /** Items whose batch finished executing (well or not). */
  #done = 0
  #progress: (() => void)[] = []
  #errors: ExecuteError<T>[] = []
  #closing: Promise<void> | undefined

  constructor(
    container: BatchContainer<T>,
    execute: ExecuteBatch<T>,
    options?: PeriodicalOptions<T>,
    /** The name error messages and warnings start with. */
    label = 'PeriodicalExecutor',
  ) {
    this.#label = label
    if (typeof execute !== 'function') {
      throw invalid(label, `execute must be a function (batch) => …, got ${describeValue(execute)}`)
    }
    const o = optionsObject(label, options, PERIODICAL_OPTIONS)
    this.#container = container
    this.#execute = execute
    this.#intervalMs = intervalOption(label, o.intervalMs, 1000)
    this.#executeTimeoutMs = intervalOption(label, o.executeTimeoutMs, 30_000, 'executeTimeoutMs')
    this.#onError = functionOption<ExecuteErrorHandler<T>>(label, 'onError', o.onError)
  }

  /** Items added and not yet executed (in the container, waiting, or executing). */
  get pending(): number {
    return this.#added - this.#done
  }

  /** Whether close() was called: add() rejects with EXECUTOR_CLOSED. */
  get closed(): boolean {
    return this.#closing !== undefined
  }

  /**
   * Adds an item. Resolves when the executor accepted it (at once, unless back-pressure holds
   * it); rejects with EXECUTOR_CLOSED after close(), or with the container's validation error.
   */
  add(item: T): Promise<void> {
    if (this.#closing !== undefined) {
      return Promise.reject(
        new ConveyorError(
          'EXECUTOR_CLOSED',
          `${this.#label}: add() after close(); add before closing, or use a new executor`,
        ),
      )
    }
    try {
      this.#container.validate?.(item)
    } catch (err) {
      return Promise.reject(err)
    }
    this.#added++
    if (this.#waiting.length > 0 || this.#sealed.length > 0) {
      return new Promise((resolve) => this.#waiting.push({ item, resolve }))
    }
    this.#accept(item)
    return Promise.resolve()
  }

  /**
   * Executes what was added before this call, without waiting for size or interval, and
   * resolves when it has executed. Rejects with execution errors no onError took (once each).
   */
  async flush(): Promise<void> {
    await this.#settle(this.#added, true)
    this.#claimErrors()
  }

  /**
   * Resolves when everything added before this call has executed, letting the size and the
   * interval decide when (go-zero's Wait). Rejects like flush().
   */
  async wait(): Promise<void> {
    await this.#settle(this.#added, false)
    this.#claimErrors()
  }

  /**
   * Refuses further add()s, executes everything added (held add()s included), and resolves
   * when done. Idempotent: every call gets the same promise. Rejects like flush().
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  async #close(): Promise<void> {
    await this.#settle(this.#added, true)
    this.#disarm()
    this.#claimErrors()
  }

  #accept(item: T): void {
    const first = this.#container.size === 0
    if (this.#container.add(item)) this.#seal()
    else if (first) this.#arm()
  }

  #arm(): void {
    if (this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#seal()
    }, this.#intervalMs)
    this.#timer.unref?.()
  }

  #disarm(): void {
    if (this.#timer === undefined) return
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Takes the container's items as the next batch, and starts the executions if idle. */
  #seal(): void {
    this.#disarm()
    if (this.#container.size === 0) return
    this.#sealed.push(this.#container.take())
    if (!this.#running) void this.#pump()
  }

  async #pump(): Promise<void> {
    this.#running = true
    try {
      for (let batch = this.#sealed.shift(); batch !== undefined; batch = this.#sealed.shift()) {
        this.#admit()
        await this.#run(batch)
        this.#done += batch.length
        const progress = this.#progress
        this.#progress = []
        for (const resolve of progress) resolve()
      }
    } finally {
      this.#running = false
    }
  }

  /** Lets held add()s in, in order, until a full batch waits again. */
  #admit(): void {
    let i = 0
    while (i < this.#waiting.length && this.#sealed.length === 0) {
      const held = this.#waiting[i++]
      this.#accept(held.item)
      held.resolve()
    }
    if (i > 0) this.#waiting = this.#waiting.slice(i)
  }

  async #run(batch: T[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(
          new ConveyorError(
            'EXECUTE_TIMEOUT',
            `${this.#label}: execute() did not settle within ${this.#executeTimeoutMs} ms (executeTimeoutMs): the batch counts as failed and the next one goes on`,
          ),
        )
      }, this.#executeTimeoutMs)
    })
    try {
      // Called inside the try: a synchronous throw is the batch's failure too.
      await Promise.race([this.#execute(batch), timedOut])
    } catch (err) {
      this.#report(asError(err), batch)
    } finally {
      clearTimeout(timer)
    }
  }

  #report(error: Error, batch: T[]): void {
    const onError = this.#onError
    if (onError === undefined) {
      const failed = new ExecuteError(this.#label, batch, error)
      emitConveyorWarning(failed.message, failed)
      this.#errors.push(failed)
      return
    }
    const fenced = (err: unknown): void => {
      const thrown = asError(err)
      emitConveyorWarning(`${this.#label}: onError threw: ${thrown.message}`, thrown)
    }
    try {
      const result = onError(error, batch)
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        ;(result as Promise<void>).then(undefined, fenced)
      }
    } catch (err) {
      fenced(err)
    }
  }

  /** Until `target` items have executed; `force` seals the container instead of waiting. */
  async #settle(target: number, force: boolean): Promise<void> {
    while (this.#done < target) {
      if (force) {
        // Held add()s count: let them in (past the bound: the caller asked for everything).
        if (this.#sealed.length === 0) this.#admit()
        this.#seal()
      }
      await new Promise<void>((resolve) => this.#progress.push(resolve))
    }
  }

  #claimErrors(): void {
    if (this.#errors.length === 0) return
    const errors = this.#errors
    this.#errors = []
    if (errors.length === 1) throw errors[0]
    throw new AggregateError(errors, `${this.#label}: ${errors.length} batches failed`)
  }
}
