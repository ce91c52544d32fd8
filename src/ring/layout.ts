/**
 * Memory layout of one lane ring: a control block of cache-line-separated 32-bit slots,
 * followed by a power-of-two byte area holding 8-byte-aligned records.
 *
 *   byte 0    WRITE     write cursor              written by the writer only
 *   byte 64   RELEASE   release cursor            written by the reader only (*)
 *   byte 128  READER_SLEEPING  doorbell: reader parked for records
 *                       armed (1) by the reader; rung (→ 0) by publish, close, abort
 *   byte 192  WATCHED   doorbell: writer parked for releases
 *                       armed (1) by the writer; rung (→ 0) by release (see doorbell.ts)
 *   byte 256  STATE     open / closing / closed   closing: writer; closed: whoever ends it
 *   byte 320  DONE      end of the last record the reader finished (reader only) (*);
 *                       a plain store per record, read only once the reader is gone
 *   byte 512  data[capacity]
 *
 * (*) When the reader's thread has died, nobody reads or writes on its side any more; the
 * owner of the ring (main thread) may then rewrite RELEASE and DONE before starting a new
 * reader. That is the only exception to single-writer-per-slot.
 *
 * Each slot sits in its own 64-byte cache line so the producer's stores to WRITE never
 * invalidate the line the consumer stores RELEASE into (no false sharing).
 *
 * A record is [length u32 | tag u32 | payload | pad to 8]. length 0xFFFFFFFF is the wrap
 * marker: the rest of the byte area up to its end is skipped and the next record starts at
 * offset 0. Records are never split across the end, so a reader always sees one contiguous
 * payload and can hand out a view instead of a copy.
 */
export const SLOT = {
  WRITE: 0,
  RELEASE: 16,
  READER_SLEEPING: 32,
  WATCHED: 48,
  STATE: 64,
  DONE: 80,
} as const

export const CONTROL_BYTES = 512
export const HEADER_BYTES = 8
export const WRAP_MARKER = -1

export const RingState = { OPEN: 0, CLOSING: 1, CLOSED: 2 } as const
export type RingState = (typeof RingState)[keyof typeof RingState]

export const MIN_CAPACITY = 64
export const MAX_CAPACITY = 2 ** 30

/** Bytes a record with `payloadBytes` of payload takes in the ring, header and padding included. */
export function recordBytes(payloadBytes: number): number {
  return (HEADER_BYTES + payloadBytes + 7) & ~7
}

/**
 * The largest payload the ring accepts. A record may need the tail of the area (skipped by a
 * wrap marker) plus its own size; capping records at half the capacity guarantees that an
 * empty ring can always take the largest one, so a writer waiting for space never waits
 * forever.
 */
export function maxPayloadBytes(capacity: number): number {
  return capacity / 2 - HEADER_BYTES
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0
}

export interface RingBuffer {
  readonly sab: SharedArrayBuffer
  readonly capacity: number
}

/** Allocates the shared memory for one ring. Both sides wrap the same `sab`. */
export function createRingBuffer(capacity: number, initialCursor = 0): SharedArrayBuffer {
  if (!isPowerOfTwo(capacity) || capacity < MIN_CAPACITY || capacity > MAX_CAPACITY) {
    throw new RangeError(
      `ring capacity must be a power of two between ${MIN_CAPACITY} and ${MAX_CAPACITY} bytes, got ${capacity}`,
    )
  }
  if (initialCursor % 8 !== 0) throw new RangeError('initial cursor must be a multiple of 8')
  const sab = new SharedArrayBuffer(CONTROL_BYTES + capacity)
  const ctl = new Int32Array(sab, 0, CONTROL_BYTES / 4)
  // Starting cursors anywhere (tests start just below 2^32) proves the modular arithmetic.
  ctl[SLOT.WRITE] = initialCursor | 0
  ctl[SLOT.RELEASE] = initialCursor | 0
  ctl[SLOT.DONE] = initialCursor | 0
  return sab
}

export function capacityOf(sab: SharedArrayBuffer): number {
  const capacity = sab.byteLength - CONTROL_BYTES
  if (!isPowerOfTwo(capacity) || capacity < MIN_CAPACITY) {
    throw new RangeError(`not a ring buffer: ${sab.byteLength} bytes`)
  }
  return capacity
}
