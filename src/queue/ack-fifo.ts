import { isRun, type Pending } from './pending.js'

/**
 * One entry per record written to a lane and not yet settled, in ring order: the record's end
 * cursor and what to settle when it is done (often nothing). A lane is handled in order, so
 * once RELEASE passes an end cursor, that record and every one before it are done: no
 * per-message completion message is needed. (Sampled records' timings: lane-samples.ts.)
 *
 * Capacity invariant: a record takes at least 8 bytes (its header), so a ring of `capacity`
 * bytes holds at most capacity/8 unreleased records. Entries are removed only when the main
 * thread applies RELEASE, which can lag the RELEASE the ring writer sees; so the lane must
 * check `full` before it writes, and treat a full FIFO as a full ring (the record waits).
 * `push` on a full FIFO is a bug, and throws rather than overwrite an entry.
 */
export class AckFifo {
  private readonly ends: Int32Array
  private readonly pending: (Pending | undefined)[]
  /** The message's place in its pushMany(), when its pending is the batch's shared one. */
  private readonly index: Int32Array
  private head = 0
  private count = 0
  private runs = 0

  constructor(readonly capacity: number) {
    this.ends = new Int32Array(capacity)
    this.pending = new Array(capacity).fill(undefined)
    this.index = new Int32Array(capacity)
  }

  /** Records written and not yet settled. */
  get size(): number {
    return this.count
  }

  get full(): boolean {
    return this.count === this.capacity
  }

  /** Entries whose caller awaits a result (run()). */
  get awaitingResults(): number {
    return this.runs
  }

  push(end: number, pending: Pending | undefined, index = 0): void {
    if (this.count === this.capacity) {
      throw new Error(`ack FIFO overflow: ${this.capacity} records unsettled (a conveyor bug)`)
    }
    this.pushShared(end, pending, index)
    if (isRun(pending)) this.runs++
  }

  /**
   * push() for a pushMany()'s shared callbacks (or none), never a run(), when the caller
   * checked that the FIFO has room: the per-message path of a batch skips both checks.
   */
  pushShared(end: number, pending: Pending | undefined, index: number): void {
    // A compare, not `%`: an integer division per message shows in push → ack.
    let slot = this.head + this.count
    if (slot >= this.capacity) slot -= this.capacity
    this.ends[slot] = end | 0
    this.pending[slot] = pending
    this.index[slot] = index
    this.count++
  }

  /**
   * Removes every entry whose record ends at or before `cursor`, oldest first, handing each
   * to `settle` with its index; returns how many. Each entry is gone before its `settle`
   * runs, so a callback that writes to the lane again (an ack that pushes) finds the FIFO
   * consistent, and one that drains it again settles nothing twice.
   */
  shiftEndedBy(
    cursor: number,
    settle: (pending: Pending | undefined, index: number) => void,
  ): number {
    let taken = 0
    while (this.headEndsBy(cursor)) {
      const index = this.headIndex
      settle(this.shift(), index)
      taken++
    }
    return taken
  }

  /** Whether the oldest entry's record ends at or before `cursor` (modular compare). */
  headEndsBy(cursor: number): boolean {
    return this.count > 0 && ((this.ends[this.head] - cursor) | 0) <= 0
  }

  /** The oldest entry's index in its pushMany(). */
  get headIndex(): number {
    return this.index[this.head]
  }

  /** Removes the oldest entry; returns what to settle. */
  shift(): Pending | undefined {
    if (this.count === 0) throw new Error('ack FIFO underflow (a conveyor bug)')
    const p = this.pending[this.head]
    this.pending[this.head] = undefined
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1
    this.count--
    if (isRun(p)) this.runs--
    return p
  }
}
