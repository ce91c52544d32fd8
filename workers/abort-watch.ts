import { ABORT_BELL, Tag } from '../src/lane/protocol.js'
import { type RingReader, RingState } from '../src/ring/index.js'

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
  /** Int32 index of the current record's tag; -1 between records. */
  private tagIndex = -1
  private controller: AbortController | undefined
  private armed = false

  constructor(
    private readonly words: Int32Array,
    private readonly bell: Int32Array,
    private readonly reader: RingReader,
  ) {}

  /** A record starts: `offset` is its payload's offset in the request ring. */
  begin(offset: number): void {
    this.tagIndex = (offset >> 2) - 1
    this.controller = undefined
  }

  end(): void {
    this.tagIndex = -1
    this.controller = undefined
  }

  /** The current record was flagged, or the ring aborted. */
  get flagged(): boolean {
    return (
      (this.tagIndex >= 0 && (Atomics.load(this.words, this.tagIndex) & Tag.ABORTED) !== 0) ||
      this.reader.state === RingState.CLOSED
    )
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
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
    // The record ended meanwhile (its controller is gone) or already aborted: stop watching.
    if (this.controller !== undefined && !this.controller.signal.aborted) this.arm()
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
