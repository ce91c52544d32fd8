import { ABORT_BELL, Tag } from '../src/lane/protocol.js'
import { type RingReader, RingState } from '../src/ring/index.js'
import type { RecordRef } from './attempt.js'

/**
 * The worker's view of aborts: whether the record being handled was flagged ABORTED by the
 * main thread (its caller's signal fired), or the ring aborted by stop() past its timeout.
 *
 * Nothing is paid per record unless the handler asks: `ctx.aborted` reads the flag from
 * shared memory (a CPU-bound loop can poll it), and `ctx.signal` makes an AbortController for
 * this record on first use and waits on the lane's abort bell (Atomics.waitAsync) while the
 * handler awaits. One waiter at a time: a wake-up for another record's abort re-arms it.
 *
 * No lost wake-up: the main thread sets the flag, then adds to the bell and notifies; the
 * waiter loads the bell, then checks the flag, then waits on the value it loaded.
 */
export class AbortWatch {
  /**
   * The record the lane loop is handling: the loop reads into this very object, so following
   * it costs the loop nothing. `offset` is -1 once the loop has no record.
   */
  readonly record: RecordRef = { offset: -1, length: 0, tag: 0, start: 0 }
  private controller: AbortController | undefined
  /** The record (its start cursor, unique per record) the controller belongs to. */
  private controllerFor = -1
  private armed = false

  constructor(
    private readonly words: Int32Array,
    private readonly bell: Int32Array,
    private readonly reader: RingReader,
  ) {}

  /** The current record was flagged, or the ring aborted. */
  get flagged(): boolean {
    const { offset } = this.record
    return (
      (offset >= 0 && (Atomics.load(this.words, (offset >> 2) - 1) & Tag.ABORTED) !== 0) ||
      this.reader.state === RingState.CLOSED
    )
  }

  get signal(): AbortSignal {
    if (this.controller === undefined || this.controllerFor !== this.record.start) {
      this.controller = new AbortController()
      this.controllerFor = this.record.start
      this.arm()
    }
    return this.controller.signal
  }

  private arm(): void {
    const seen = Atomics.load(this.bell, ABORT_BELL)
    if (this.fire()) return
    if (this.armed) return
    this.armed = true
    const wait = Atomics.waitAsync(this.bell, ABORT_BELL, seen)
    if (wait.async) wait.value.then(this.woken)
    else this.woken()
  }

  private readonly woken = (): void => {
    this.armed = false
    // Its record ended meanwhile, or it already aborted: stop watching.
    const { controller } = this
    if (
      controller !== undefined &&
      !controller.signal.aborted &&
      this.controllerFor === this.record.start &&
      this.record.offset >= 0
    ) {
      this.arm()
    }
  }

  /** Aborts the current controller if the record is flagged; true when it did. */
  private fire(): boolean {
    if (!this.flagged) return false
    this.controller?.abort(new AbortReason(this.reader.state === RingState.CLOSED))
    return true
  }
}

/** What `ctx.signal.reason` is: an AbortError, named after who aborted. */
class AbortReason extends Error {
  constructor(stopping: boolean) {
    super(
      stopping
        ? 'stop() timed out waiting for this handler'
        : "the message's signal fired (its push() or run() caller aborted it)",
    )
    this.name = 'AbortError'
  }
}
