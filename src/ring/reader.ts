import {
  armDoorbell,
  disarmDoorbell,
  ringDoorbell,
  waitDoorbell,
  waitDoorbellSync,
} from './doorbell.js'
import { CONTROL_BYTES, capacityOf, HEADER_BYTES, RingState, SLOT, WRAP_MARKER } from './layout.js'

/**
 * The consuming side of one ring (a worker). Single consumer: one RingReader per ring.
 *
 * `next()` hands out records in order as (offset, length, tag) into `bytes` — a view, not a
 * copy — and moves only the local read cursor. The memory stays untouched by the writer until
 * `release()` publishes that cursor, which the caller does only once it has *finished* those
 * records. So a crash between next() and release() loses nothing: the records are still in
 * the ring, behind WRITE and ahead of RELEASE, for the next reader.
 */
export class RingReader {
  readonly sab: SharedArrayBuffer
  readonly capacity: number
  /** A view of the whole buffer; record offsets point into it. */
  readonly bytes: Uint8Array
  /** Fields of the record last returned by next(). */
  length = 0
  tag = 0
  /** Cursor of the record last returned by next() (its first header byte). */
  start = 0
  private readonly ctl: Int32Array
  private readonly mask: number
  private tail: number
  private cachedWrite: number

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab
    this.capacity = capacityOf(sab)
    this.mask = this.capacity - 1
    // One view over the whole buffer: control slots and record headers alike.
    this.ctl = new Int32Array(sab)
    this.bytes = new Uint8Array(sab)
    this.tail = Atomics.load(this.ctl, SLOT.RELEASE) >>> 0
    this.cachedWrite = this.tail
  }

  /** The local read cursor: the end of the last record returned by next(). */
  get cursor(): number {
    return this.tail
  }

  get state(): RingState {
    return Atomics.load(this.ctl, SLOT.STATE) as RingState
  }

  /**
   * Whether the writer aborted the ring (CLOSED), read without Atomics: cheap enough to ask
   * before every record, where `state` is not (Atomics.load is a call of ~10 ns in Node 20's
   * optimizing compiler, a tenth of a noop record). A plain load of shared memory may in
   * principle lag; callers back it with `state` at their own bound (the lane loop: every
   * release, and every record once records are slow).
   */
  get abortedUnfenced(): boolean {
    return this.ctl[SLOT.STATE] === RingState.CLOSED
  }

  /** Whether a published record is waiting to be read. */
  hasNext(): boolean {
    if (this.tail !== this.cachedWrite) return true
    this.cachedWrite = Atomics.load(this.ctl, SLOT.WRITE) >>> 0
    return this.tail !== this.cachedWrite
  }

  /** The next record's payload offset in `bytes`, or -1 when none is published. */
  next(): number {
    for (;;) {
      if (this.tail === this.cachedWrite) {
        this.cachedWrite = Atomics.load(this.ctl, SLOT.WRITE) >>> 0
        if (this.tail === this.cachedWrite) return -1
      }
      const pos = this.tail & this.mask
      const at = (CONTROL_BYTES + pos) >> 2
      const length = this.ctl[at]
      if (length === WRAP_MARKER) {
        this.tail = (this.tail + this.capacity - pos) >>> 0
        continue
      }
      this.start = this.tail
      this.length = length
      this.tag = this.ctl[at + 1] >>> 0
      this.tail = (this.tail + ((HEADER_BYTES + length + 7) & ~7)) >>> 0
      return CONTROL_BYTES + pos + HEADER_BYTES
    }
  }

  /**
   * Publishes that every record read so far is finished: the writer may reuse their memory.
   * Wakes a writer parked on RELEASE (waiting for room, or for acknowledgements).
   */
  release(): void {
    Atomics.store(this.ctl, SLOT.RELEASE, this.tail | 0)
    ringDoorbell(this.ctl, SLOT.WATCHED)
  }

  /** Wakes a writer parked on RELEASE even though RELEASE did not move (it has news elsewhere). */
  ring(): void {
    ringDoorbell(this.ctl, SLOT.WATCHED)
  }

  /**
   * Records that every record before `cursor` is finished, without publishing RELEASE. A plain
   * store, once per record: DONE is read only after this reader's thread is gone (crash
   * recovery, stop), and a thread's end reaches the owner through a synchronizing channel
   * (its exit event), so the last store is visible then; a live reader's progress is
   * published by RELEASE, whose seq-cst store orders every DONE before it.
   */
  markDone(cursor: number): void {
    this.ctl[SLOT.DONE] = cursor | 0
  }

  /**
   * Sleeps (blocking this thread) until a record is published, the ring leaves OPEN, or
   * `timeoutMs` passes. Returns true if records may be there. For workers, whose thread has
   * nothing else to do; call it in slices so their event loop still runs between slices.
   */
  waitSync(timeoutMs: number): boolean {
    if (!this.park()) return true
    waitDoorbellSync(this.ctl, SLOT.READER_SLEEPING, timeoutMs)
    return this.hasNext()
  }

  /** Like waitSync, without blocking the thread's event loop. */
  async waitAsync(timeoutMs: number): Promise<boolean> {
    if (!this.park()) return true
    await waitDoorbell(this.ctl, SLOT.READER_SLEEPING, timeoutMs)
    return this.hasNext()
  }

  /** Arms the doorbell, then re-checks: false when there is no reason to sleep after all. */
  private park(): boolean {
    armDoorbell(this.ctl, SLOT.READER_SLEEPING)
    if (this.hasNext() || this.state !== RingState.OPEN) {
      disarmDoorbell(this.ctl, SLOT.READER_SLEEPING)
      return false
    }
    return true
  }
}
