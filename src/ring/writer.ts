import { ConveyorError } from '../errors.js'
import { armDoorbell, disarmDoorbell, ringDoorbell, waitDoorbell } from './doorbell.js'
import {
  CONTROL_BYTES,
  capacityOf,
  HEADER_BYTES,
  maxPayloadBytes,
  RingState,
  recordBytes,
  SLOT,
  WRAP_MARKER,
} from './layout.js'

/**
 * The producing side of one ring (the main thread). Single producer: one RingWriter per ring.
 *
 * Protocol (see layout.ts for the slots):
 *  - `head` is the local write cursor; records between the published WRITE and `head` are
 *    invisible to the reader until `publish()`, so many records cost one release-store.
 *  - Space is reused only behind RELEASE: the reader stores RELEASE after it has *finished*
 *    records, never when it merely read them, so a payload view stays valid while handled.
 *  - Wake-ups: publish() stores WRITE, then loads READER_SLEEPING; the reader stores
 *    READER_SLEEPING, then re-loads WRITE before it waits on WRITE. Both are seq-cst, so at
 *    least one side sees the other's store: no lost wake-up. The same pairing protects
 *    WATCHED/RELEASE in the other direction.
 */
export class RingWriter {
  readonly sab: SharedArrayBuffer
  readonly capacity: number
  /** Largest payload a single record may carry. */
  readonly maxPayload: number
  /** A view of the whole buffer; `reserve()` returns offsets into it. */
  readonly bytes: Uint8Array
  private readonly ctl: Int32Array
  private readonly mask: number
  private head: number
  private cachedRelease: number
  private reserved = -1

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab
    this.capacity = capacityOf(sab)
    this.maxPayload = maxPayloadBytes(this.capacity)
    this.mask = this.capacity - 1
    // One view over the whole buffer: control slots and record headers alike.
    this.ctl = new Int32Array(sab)
    this.bytes = new Uint8Array(sab)
    this.head = Atomics.load(this.ctl, SLOT.WRITE) >>> 0
    this.cachedRelease = Atomics.load(this.ctl, SLOT.RELEASE) >>> 0
  }

  /** Bytes written (published or not) that the reader has not released yet. */
  get backlog(): number {
    return (this.head - (Atomics.load(this.ctl, SLOT.RELEASE) >>> 0)) >>> 0
  }

  /** The local write cursor: the end of the last committed record. */
  get cursor(): number {
    return this.head
  }

  get state(): RingState {
    return Atomics.load(this.ctl, SLOT.STATE) as RingState
  }

  /**
   * Reserves room for one record of at most `maxPayload` bytes and returns the offset in
   * `bytes` where its payload goes, or -1 when the ring has no room now (await `waitForSpace`).
   * Throws MESSAGE_TOO_LARGE when no amount of waiting could make room.
   */
  reserve(maxPayload: number): number {
    if (maxPayload > this.maxPayload) throw this.tooLarge(maxPayload)
    const need = recordBytes(maxPayload)
    const pos = this.head & this.mask
    const tail = this.capacity - pos
    const span = this.spanOf(need, tail)
    if (span > this.room()) {
      this.cachedRelease = Atomics.load(this.ctl, SLOT.RELEASE) >>> 0
      if (span > this.room()) return -1
    }
    if (need > tail) {
      // The record would straddle the end: mark the tail as skipped and start at offset 0.
      this.ctl[(CONTROL_BYTES + pos) >> 2] = WRAP_MARKER
      this.head = (this.head + tail) >>> 0
    }
    this.reserved = CONTROL_BYTES + (this.head & this.mask)
    return this.reserved + HEADER_BYTES
  }

  /** Completes the record last reserved, with its actual payload length (≤ what was reserved). */
  commit(length: number, tag: number): void {
    const at = this.reserved >> 2
    this.ctl[at] = length
    this.ctl[at + 1] = tag
    this.reserved = -1
    this.head = (this.head + recordBytes(length)) >>> 0
  }

  /** Copies `payload` in as one record. Returns false when the ring has no room now. */
  write(payload: Uint8Array, tag = 0): boolean {
    const at = this.reserve(payload.byteLength)
    if (at < 0) return false
    this.bytes.set(payload, at)
    this.commit(payload.byteLength, tag)
    return true
  }

  /** Makes every committed record visible to the reader, and wakes it if it sleeps. */
  publish(): void {
    Atomics.store(this.ctl, SLOT.WRITE, this.head | 0)
    ringDoorbell(this.ctl, SLOT.READER_SLEEPING)
  }

  /** Whether a record of `maxPayload` bytes would fit now. */
  hasRoom(maxPayload: number): boolean {
    this.cachedRelease = Atomics.load(this.ctl, SLOT.RELEASE) >>> 0
    return (
      this.spanOf(recordBytes(maxPayload), this.capacity - (this.head & this.mask)) <= this.room()
    )
  }

  /** Bytes a record of `need` bytes takes from `head`: itself, plus the tail a wrap skips. */
  private spanOf(need: number, tail: number): number {
    return need <= tail ? need : tail + need
  }

  /** Free bytes as of the last RELEASE this writer read. */
  private room(): number {
    return this.capacity - ((this.head - this.cachedRelease) >>> 0)
  }

  /**
   * Resolves when RELEASE has moved past `seen` (or at once if it already has), without
   * blocking the event loop. Used both to wait for space and to learn about finished records.
   * `timeoutMs` bounds the wait so a caller can re-check conditions the ring cannot see.
   */
  async waitForRelease(seen: number, timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    armDoorbell(this.ctl, SLOT.WATCHED)
    if (Atomics.load(this.ctl, SLOT.RELEASE) >>> 0 !== seen >>> 0) {
      disarmDoorbell(this.ctl, SLOT.WATCHED)
      return
    }
    await waitDoorbell(this.ctl, SLOT.WATCHED, timeoutMs)
  }

  /** The release cursor as the reader last published it. */
  get released(): number {
    return Atomics.load(this.ctl, SLOT.RELEASE) >>> 0
  }

  /** No more records will come: the reader drains what is there, then ends. */
  close(): void {
    this.publish()
    Atomics.compareExchange(this.ctl, SLOT.STATE, RingState.OPEN, RingState.CLOSING)
    ringDoorbell(this.ctl, SLOT.READER_SLEEPING)
  }

  /** The reader stops after the record it is handling, leaving the rest in the ring. */
  abort(): void {
    this.publish()
    Atomics.store(this.ctl, SLOT.STATE, RingState.CLOSED)
    ringDoorbell(this.ctl, SLOT.READER_SLEEPING)
  }

  private tooLarge(size: number): ConveyorError {
    return new ConveyorError(
      'MESSAGE_TOO_LARGE',
      `a record of ${size} bytes cannot fit a ring of ${this.capacity} bytes (at most ${this.maxPayload} bytes per record): raise laneBytes to at least ${2 ** Math.ceil(Math.log2((size + HEADER_BYTES) * 2))} or send smaller messages`,
    )
  }
}
