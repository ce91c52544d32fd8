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
 *
 * What to settle is kept per group of consecutive entries that share it (a pushMany()'s
 * callbacks, one push loop's ack function, nothing at all), not per entry: storing an object
 * into a long-lived array costs a write barrier (~9 % of writing a 256-byte message, measured
 * on one thread). Groups never outnumber entries, so the group ring of the same size cannot
 * overflow either.
 *
 * The arrays start small and double when full, up to `capacity`: the entries in use are a
 * window moving through them, and at full capacity (capacity/8 entries, for a ring of empty
 * records) a window of 256-byte messages streams through ~30× more memory than it holds,
 * pushing the ring itself out of the cache.
 */
export class AckFifo {
  private ends: Int32Array
  /** The message's place in its pushMany(), when its pending is the batch's shared one. */
  private index: Int32Array
  /** Entries the arrays hold now; doubles (grow()) up to `capacity`. */
  private slots: number
  private head = 0
  private count = 0
  private awaiting = 0
  /** Groups of consecutive entries, oldest first: what each settles, and entries left in it. */
  private groupPending: (Pending | undefined)[]
  private groupLength: Int32Array
  private groupHead = 0
  private groupCount = 0
  /** The newest group's slot and pending: a push that shares it joins it. */
  private groupTail = 0
  private tailPending: Pending | undefined = undefined

  constructor(
    readonly capacity: number,
    initialSlots = INITIAL_SLOTS,
  ) {
    this.slots = Math.min(capacity, initialSlots)
    this.ends = new Int32Array(this.slots)
    this.index = new Int32Array(this.slots)
    this.groupPending = new Array(this.slots).fill(undefined)
    this.groupLength = new Int32Array(this.slots)
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
    return this.awaiting
  }

  push(end: number, pending: Pending | undefined, index = 0): void {
    if (this.count === this.capacity) {
      throw new Error(`ack FIFO overflow: ${this.capacity} records unsettled (a conveyor bug)`)
    }
    this.pushShared(end, pending, index)
    if (isRun(pending)) this.awaiting++
  }

  /**
   * push() for a pushMany()'s shared callbacks (or none), never a run(), when the caller
   * checked that the FIFO has room: the per-message path of a batch skips both checks.
   */
  pushShared(end: number, pending: Pending | undefined, index: number): void {
    if (this.count === this.slots) this.grow()
    // A compare, not `%`: an integer division per message shows in push → ack.
    let slot = this.head + this.count
    if (slot >= this.slots) slot -= this.slots
    this.ends[slot] = end | 0
    this.index[slot] = index
    this.count++
    if (this.groupCount > 0 && pending === this.tailPending) {
      this.groupLength[this.groupTail]++
      return
    }
    let group = this.groupHead + this.groupCount
    if (group >= this.slots) group -= this.slots
    this.groupPending[group] = pending
    this.groupLength[group] = 1
    this.groupCount++
    this.groupTail = group
    this.tailPending = pending
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
    this.head = this.head + 1 === this.slots ? 0 : this.head + 1
    this.count--
    const group = this.groupHead
    const p = this.groupPending[group]
    if (--this.groupLength[group] === 0) {
      // The group is used up: let go of what it settled.
      this.groupPending[group] = undefined
      this.groupHead = group + 1 === this.slots ? 0 : group + 1
      if (--this.groupCount === 0) this.tailPending = undefined
    }
    if (isRun(p)) this.awaiting--
    return p
  }

  /** Doubles the arrays (up to `capacity`), entries and groups moved to the front in order. */
  private grow(): void {
    const slots = Math.min(this.capacity, this.slots * 2)
    this.ends = inOrder(this.ends, new Int32Array(slots), this.head, this.count)
    this.index = inOrder(this.index, new Int32Array(slots), this.head, this.count)
    const { groupHead, groupCount } = this
    this.groupLength = inOrder(this.groupLength, new Int32Array(slots), groupHead, groupCount)
    this.groupPending = inOrder(
      this.groupPending,
      new Array<Pending | undefined>(slots).fill(undefined),
      groupHead,
      groupCount,
    )
    this.head = 0
    this.groupHead = 0
    if (groupCount > 0) this.groupTail = groupCount - 1
    this.slots = slots
  }
}

/**
 * Entries the arrays start with: a few doublings fit a lane's busiest burst (1024 entries for
 * 256 KiB of 256-byte messages).
 */
const INITIAL_SLOTS = 256

/** Copies the `count` entries of ring `from` starting at `head` to the front of `to`. */
function inOrder<T extends Int32Array | (Pending | undefined)[]>(
  from: T,
  to: T,
  head: number,
  count: number,
): T {
  for (let i = 0, at = head; i < count; i++) {
    to[i] = from[at]
    at = at + 1 === from.length ? 0 : at + 1
  }
  return to
}
