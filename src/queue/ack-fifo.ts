import { isRun, type Pending } from './pending.js'

/**
 * One entry per record written to a lane and not yet settled, in ring order: the record's end
 * cursor, and (per group, below) what to settle when it is done, often nothing. A lane is
 * handled in order, so once RELEASE passes an end cursor, that record and every one before it
 * are done: no per-message completion message is needed. (Sampled records' timings:
 * lane-samples.ts.)
 *
 * Capacity invariant: a record takes at least 8 bytes (its header), so a ring of `capacity`
 * bytes holds at most capacity/8 unreleased records. Entries are removed only when the main
 * thread applies RELEASE, which can lag the RELEASE the ring writer sees; so the lane must
 * check `full` before it writes, and treat a full FIFO as a full ring (the record waits).
 * `push` on a full FIFO is a bug, and throws rather than overwrite an entry.
 *
 * Groups: what to settle is kept per group of consecutive entries that share it (a pushMany()'s
 * callbacks, one push loop's ack function, nothing at all), not per entry: storing an object
 * into a long-lived array costs a write barrier (~9 % of writing a 256-byte message, measured
 * on one thread). A group also keeps the index of its oldest entry in its pushMany(): entries
 * join a batch's group only with the next index, so the index of every entry follows from its
 * group's (a pushMany()'s stretch is one group; no index per entry). Other pendings ignore
 * the index. Groups never outnumber entries, so group arrays of the same size cannot overflow.
 *
 * Runs: a pushMany() stretch adds its entries with `pushEnd()`, one store per message, and
 * then groups them with one `endRun()`. Between the two the FIFO is not consistent; nothing
 * else may touch it (the lane's write loop calls out to nothing that could).
 *
 * The arrays start small and double when full, up to `capacity`: the entries in use are a
 * window moving through them, and at full capacity (capacity/8 entries, for a ring of empty
 * records) a window of 256-byte messages streams through ~30× more memory than it holds,
 * pushing the ring itself out of the cache.
 */
export class AckFifo {
  private ends: Int32Array
  /** Entries the arrays hold now; doubles (grow()) up to `capacity`. */
  private slots: number
  private head = 0
  private count = 0
  private awaiting = 0
  /**
   * Groups of consecutive entries, oldest first: what each settles, entries left in it, and
   * the pushMany() index of its oldest entry.
   */
  private groupPending: (Pending | undefined)[]
  private groupLength: Int32Array
  private groupIndex: Int32Array
  private groupHead = 0
  private groupCount = 0
  /** The newest group's slot, pending, and the index its next entry must have to join it. */
  private groupTail = 0
  private tailPending: Pending | undefined = undefined
  private tailNext = 0
  /** What the last takeEnded() removed: what it settles, and the first entry's index. */
  takenPending: Pending | undefined = undefined
  takenIndex = 0

  constructor(
    readonly capacity: number,
    initialSlots = INITIAL_SLOTS,
  ) {
    this.slots = Math.min(capacity, initialSlots)
    this.ends = new Int32Array(this.slots)
    this.groupPending = new Array(this.slots).fill(undefined)
    this.groupLength = new Int32Array(this.slots)
    this.groupIndex = new Int32Array(this.slots)
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

  /** One entry; `index`: its place in its pushMany(), when `pending` is the batch's. */
  push(end: number, pending: Pending | undefined, index = 0): void {
    if (this.count === this.capacity) {
      throw new Error(`ack FIFO overflow: ${this.capacity} records unsettled (a conveyor bug)`)
    }
    this.pushEnd(end)
    this.endRun(1, pending, index)
    if (isRun(pending)) this.awaiting++
  }

  /**
   * The next entry of a run, without what it settles: follow the run with endRun(). The
   * caller checked that the FIFO has room for the whole run: the per-message path of a
   * pushMany() stretch is this one store.
   */
  pushEnd(end: number): void {
    if (this.count === this.slots) this.grow()
    // A compare, not `%`: an integer division per message shows in push → ack.
    let slot = this.head + this.count
    if (slot >= this.slots) slot -= this.slots
    this.ends[slot] = end | 0
    this.count++
  }

  /**
   * Groups the last `n` entries pushEnd() added: they settle `pending` (a run() only through
   * push(), alone), with indices `first`, `first + 1`, … They join the newest group when it
   * settles the same, and, for a pushMany()'s callbacks, when their indices follow on from its.
   */
  endRun(n: number, pending: Pending | undefined, first: number): void {
    if (n === 0) return
    if (
      this.groupCount > 0 &&
      pending === this.tailPending &&
      (first === this.tailNext || !isBatch(pending))
    ) {
      this.groupLength[this.groupTail] += n
    } else {
      let group = this.groupHead + this.groupCount
      if (group >= this.slots) group -= this.slots
      this.groupPending[group] = pending
      this.groupLength[group] = n
      this.groupIndex[group] = first
      this.groupCount++
      this.groupTail = group
      this.tailPending = pending
    }
    this.tailNext = first + n
  }

  /**
   * Removes the oldest entries whose records end at or before `cursor`, as far as they share
   * one group; returns how many (0: the oldest has not ended, or the FIFO is empty). What
   * they settle and the first one's index are in `takenPending` and `takenIndex` until the
   * next call. Call it again for the next group: the lane settles each run of entries in one
   * pass (one check of what to settle, then its callbacks); a shift and a dispatch per entry
   * made the main side of pushMany() 5–11 % dearer per message (one thread, measured). The
   * entries are gone before the caller settles them, so a callback that writes to the lane
   * finds the FIFO consistent; one that would settle again finds the lane's drain() busy.
   */
  takeEnded(cursor: number): number {
    if (this.count === 0) return 0
    const { ends, slots } = this
    const group = this.groupHead
    const length = this.groupLength[group]
    let at = this.head
    let n = 0
    while (n < length && ((ends[at] - cursor) | 0) <= 0) {
      n++
      at = at + 1 === slots ? 0 : at + 1
    }
    if (n === 0) return 0
    const p = this.groupPending[group]
    this.takenPending = p
    this.takenIndex = this.groupIndex[group]
    this.head = at
    this.count -= n
    if (n === length) this.dropHeadGroup(p)
    else {
      this.groupLength[group] = length - n
      this.groupIndex[group] += n
    }
    return n
  }

  /** Whether the oldest entry's record ends at or before `cursor` (modular compare). */
  headEndsBy(cursor: number): boolean {
    return this.count > 0 && ((this.ends[this.head] - cursor) | 0) <= 0
  }

  /** The oldest entry's index in its pushMany() (meaningful for a batch's callbacks). */
  get headIndex(): number {
    return this.groupIndex[this.groupHead]
  }

  /** Removes the oldest entry; returns what to settle. */
  shift(): Pending | undefined {
    if (this.count === 0) throw new Error('ack FIFO underflow (a conveyor bug)')
    this.head = this.head + 1 === this.slots ? 0 : this.head + 1
    this.count--
    const group = this.groupHead
    const p = this.groupPending[group]
    this.groupIndex[group]++
    if (--this.groupLength[group] === 0) this.dropHeadGroup(p)
    return p
  }

  /** The oldest group is used up: let go of what it settled. A run() is alone in its group. */
  private dropHeadGroup(p: Pending | undefined): void {
    const group = this.groupHead
    this.groupPending[group] = undefined
    this.groupHead = group + 1 === this.slots ? 0 : group + 1
    if (--this.groupCount === 0) this.tailPending = undefined
    if (isRun(p)) this.awaiting--
  }

  /** Doubles the arrays (up to `capacity`), entries and groups moved to the front in order. */
  private grow(): void {
    const slots = Math.min(this.capacity, this.slots * 2)
    this.ends = inOrder(this.ends, new Int32Array(slots), this.head, this.count)
    const { groupHead, groupCount } = this
    this.groupLength = inOrder(this.groupLength, new Int32Array(slots), groupHead, groupCount)
    this.groupIndex = inOrder(this.groupIndex, new Int32Array(slots), groupHead, groupCount)
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

/** A pushMany()'s shared callbacks: the one pending whose entries' indices matter. */
function isBatch(p: Pending | undefined): boolean {
  return typeof p === 'object' && p.kind === 'many'
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
