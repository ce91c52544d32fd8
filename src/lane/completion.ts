/**
 * The completion record: what a worker tells the main thread that RELEASE cannot say. Both
 * sides use this file; nothing else reads or writes the layout.
 *
 *   ring tag: the kind (Completion)
 *   body:     [start cursor u32][attempt u32][error bytes u32][error JSON][rest]
 *
 * `start` is the request record's cursor (its header), `rest` the v8-serialized result
 * (RESULT) or the raw request payload (FAILED, GAVE_UP, ABORTED), so a dead letter needs no copy kept
 * on the main side. The completion ring is twice the request ring, so a failure always fits:
 * the largest payload (capacity/2 - 8) plus the prefix leaves at least capacity/2 bytes for the
 * error text, which `errorText` cuts to fit.
 *
 * Order per record, in the worker: completion published → DONE stored → RELEASE stored.
 * So when the main thread sees RELEASE or DONE past a record, its completions are readable.
 */
export const Completion = {
  /** run() succeeded: rest is the v8-serialized result. */
  RESULT: 1,
  /** A handler attempt threw; another attempt follows. rest: the payload. */
  FAILED: 2,
  /** The last attempt threw: a pushed message is dead-lettered, a run() rejects. */
  GAVE_UP: 3,
  /**
   * The record's ABORTED flag was set (its caller's signal fired): the handler was skipped,
   * or its attempt threw once the flag was up. No retry, no dead letter. rest: the payload.
   */
  ABORTED: 4,
} as const
export type CompletionKind = (typeof Completion)[keyof typeof Completion]

export const COMPLETION_PREFIX = 12

/** Bytes a completion body takes. */
export function completionBytes(errorBytes: number, restBytes: number): number {
  return COMPLETION_PREFIX + errorBytes + restBytes
}

/** Writes a completion body at `at` in `out`; returns its length. */
export function writeCompletion(
  out: Buffer,
  at: number,
  start: number,
  attempt: number,
  errorText: string,
  rest: Uint8Array | undefined,
): number {
  out.writeUInt32LE(start >>> 0, at)
  out.writeUInt32LE(attempt, at + 4)
  const errorBytes = errorText === '' ? 0 : out.write(errorText, at + COMPLETION_PREFIX, 'utf8')
  out.writeUInt32LE(errorBytes, at + 8)
  const restAt = at + COMPLETION_PREFIX + errorBytes
  if (rest) out.set(rest, restAt)
  return COMPLETION_PREFIX + errorBytes + (rest ? rest.byteLength : 0)
}

/** A completion body as read from the ring: offsets into the same buffer, no copies. */
export interface CompletionView {
  start: number
  attempt: number
  /** The error JSON (FAILED, GAVE_UP), '' for RESULT. */
  errorText: string
  restOffset: number
  restLength: number
}

export function readCompletion(out: Buffer, offset: number, length: number): CompletionView {
  const errorBytes = out.readUInt32LE(offset + 8)
  const restOffset = offset + COMPLETION_PREFIX + errorBytes
  return {
    start: out.readUInt32LE(offset),
    attempt: out.readUInt32LE(offset + 4),
    errorText: errorBytes === 0 ? '' : out.toString('utf8', offset + COMPLETION_PREFIX, restOffset),
    restOffset,
    restLength: length - COMPLETION_PREFIX - errorBytes,
  }
}
