import { ringDoorbell } from './doorbell.js'
import {
  CONTROL_BYTES,
  capacityOf,
  HEADER_BYTES,
  recordBytes,
  SLOT,
  WRAP_MARKER,
} from './layout.js'

/**
 * Tools for the ring's owner (the main thread) once the reader's thread is gone: nothing
 * else touches the reader's slots then, so the owner may rewrite RELEASE and the tags of
 * records not yet released. Never call these while a reader is alive.
 */
export interface RecordView {
  /** Cursor of the record's header. */
  start: number
  /** Cursor just past the record. */
  end: number
  /** Payload offset into the whole buffer. */
  offset: number
  length: number
  tag: number
}

/** The record at `cursor` (skipping a wrap marker), or undefined when `cursor` is WRITE. */
export function recordAt(sab: SharedArrayBuffer, cursor: number): RecordView | undefined {
  const capacity = capacityOf(sab)
  const ctl = new Int32Array(sab)
  const write = Atomics.load(ctl, SLOT.WRITE) >>> 0
  let at = cursor >>> 0
  if (at === write) return undefined
  let pos = at & (capacity - 1)
  if (ctl[(CONTROL_BYTES + pos) >> 2] === WRAP_MARKER) {
    at = (at + capacity - pos) >>> 0
    if (at === write) return undefined
    pos = 0
  }
  const index = (CONTROL_BYTES + pos) >> 2
  const length = ctl[index]
  return {
    start: at,
    end: (at + recordBytes(length)) >>> 0,
    offset: CONTROL_BYTES + pos + HEADER_BYTES,
    length,
    tag: ctl[index + 1],
  }
}

/** Rewrites the tag of the record at `start` (as returned by recordAt). */
export function setTag(sab: SharedArrayBuffer, record: RecordView, tag: number): void {
  const ctl = new Int32Array(sab)
  ctl[(record.offset - HEADER_BYTES + 4) >> 2] = tag
}

/** The dead reader's DONE cursor: every record before it was finished. */
export function doneCursor(sab: SharedArrayBuffer): number {
  return Atomics.load(new Int32Array(sab, 0, CONTROL_BYTES / 4), SLOT.DONE) >>> 0
}

/** Moves RELEASE (and DONE) to `cursor`, as the dead reader would have. */
export function adoptRelease(sab: SharedArrayBuffer, cursor: number): void {
  const ctl = new Int32Array(sab, 0, CONTROL_BYTES / 4)
  Atomics.store(ctl, SLOT.DONE, cursor | 0)
  Atomics.store(ctl, SLOT.RELEASE, cursor | 0)
  ringDoorbell(ctl, SLOT.WATCHED)
}

/** Every unreleased record from `from` to WRITE, in order. */
export function recordsFrom(sab: SharedArrayBuffer, from: number): RecordView[] {
  const out: RecordView[] = []
  let record = recordAt(sab, from)
  while (record) {
    out.push(record)
    record = recordAt(sab, record.end)
  }
  return out
}
