import {
  CONTROL_BYTES,
  createRingBuffer,
  HEADER_BYTES,
  RingReader,
  RingWriter,
  recordBytes,
} from '../../src/ring/index.js'

const U32 = 2 ** 32

export interface Ring {
  sab: SharedArrayBuffer
  writer: RingWriter
  reader: RingReader
  /** The whole buffer, for looking at headers and wrap markers. */
  view: DataView
}

export function makeRing(capacity: number, initialCursor = 0): Ring {
  const sab = createRingBuffer(capacity, initialCursor)
  return {
    sab,
    writer: new RingWriter(sab),
    reader: new RingReader(sab),
    view: new DataView(sab),
  }
}

/** Deterministic bytes, different for every (length, seed). */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let s = (Math.imul(seed + 1, 0x9e3779b1) ^ length) | 0
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) | 0
    out[i] = s >>> 24
  }
  return out
}

export interface Read {
  /** Payload offset into reader.bytes. */
  at: number
  length: number
  tag: number
  /** Cursor of the record's header. */
  start: number
  /** A copy of the payload. */
  payload: Uint8Array
}

/**
 * Reads one record (copying its payload) or returns undefined when none is published. Throws
 * on a record no correct ring could hand out, so that a broken ring fails fast instead of
 * sending a test through millions of garbage records.
 */
export function readNext(reader: RingReader): Read | undefined {
  const before = reader.cursor
  const at = reader.next()
  if (at < 0) return undefined
  const { length, tag, start } = reader
  const maxPayload = reader.capacity / 2 - HEADER_BYTES
  if (!Number.isInteger(length) || length < 0 || length > maxPayload) {
    throw new Error(`reader.next() returned a record of length ${length} at cursor ${start}`)
  }
  const skipped = (start - before + U32) % U32 // a wrap marker's tail, or 0
  const moved = (reader.cursor - start + U32) % U32
  if (skipped >= reader.capacity || moved !== recordBytes(length)) {
    throw new Error(
      `reader.next() moved its cursor from ${before} to ${reader.cursor} for a ${length}-byte record at ${start}`,
    )
  }
  return { at, length, tag, start, payload: reader.bytes.slice(at, at + length) }
}

/** Reads every published record; a ring never holds more than capacity / 8 of them. */
export function drain(reader: RingReader): Read[] {
  const out: Read[] = []
  const limit = reader.capacity / HEADER_BYTES
  for (let read = readNext(reader); read; read = readNext(reader)) {
    out.push(read)
    if (out.length > limit)
      throw new Error(`more than ${limit} records in a ${reader.capacity}-byte ring`)
  }
  return out
}

/** The 32-bit word at ring position `pos` (header length or wrap marker), little-endian. */
export function wordAt(view: DataView, pos: number): number {
  return view.getInt32(CONTROL_BYTES + pos, true)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Tracks whether a promise settled, to assert that a wait is (not yet) over. */
export function track<T>(promise: Promise<T>) {
  const state = { settled: false, value: undefined as T | undefined, promise }
  promise.then(
    (value) => {
      state.settled = true
      state.value = value
    },
    () => {
      state.settled = true
    },
  )
  return state
}

/** Resolves with the promise's value, or rejects if it takes longer than `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
