import { ConveyorError, type ConveyorErrorCode } from '../errors.js'

/**
 * How an error crosses from a worker to the main thread: a plain object as JSON text in a
 * completion record. Written by the worker (`serializeError`, `errorText`), read by the main
 * thread (`deserializeError`); neither side builds or parses the shape by hand.
 */
export interface SerializedError {
  name: string
  message: string
  stack?: string
  code?: string
}

/**
 * Codes a worker raises for conveyor's own steps (decoding a message, encoding a result), not
 * for the handler. They come back as ConveyorErrors, and do not count as handler failures.
 */
const OWN_CODES: ReadonlySet<string> = new Set<ConveyorErrorCode>([
  'RESULT_ENCODE_FAILED',
  'DECODE_FAILED',
])

/** Never throws: whatever a handler threw (an object without a prototype, a throwing getter). */
export function serializeError(err: unknown, code?: ConveyorErrorCode): SerializedError {
  if (err instanceof Error) {
    const own = safely(() => (err as { code?: unknown }).code)
    return {
      name: text(safely(() => err.name)) || 'Error',
      message: text(safely(() => err.message) ?? ''),
      stack: safely(() => err.stack) === undefined ? undefined : text(safely(() => err.stack)),
      code: code ?? (typeof own === 'string' ? own : undefined),
    }
  }
  return { name: 'Error', message: `non-Error thrown: ${text(err)}`, code }
}

function safely<T>(read: () => T): T | undefined {
  try {
    return read()
  } catch {
    return undefined
  }
}

function text(value: unknown): string {
  if (typeof value === 'string') return value
  try {
    return String(value)
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/**
 * The JSON text of `error`, at most `room` UTF-8 bytes: past that the stack goes, then the
 * message is cut. A failure must always fit its completion record, whatever the handler threw.
 */
export function errorText(error: SerializedError, room: number): string {
  const full = JSON.stringify(error)
  if (Buffer.byteLength(full) <= room) return full
  // Worst case 3 bytes per UTF-16 unit, 6 once JSON escapes it; keep a margin for the rest.
  const keep = Math.max(0, Math.floor((room - 256) / 6))
  const cut = JSON.stringify({ ...error, stack: undefined, message: error.message.slice(0, keep) })
  if (Buffer.byteLength(cut) <= room) return cut
  // A name or code that alone overflows: say so rather than lose the failure.
  return JSON.stringify({ name: 'Error', message: error.message.slice(0, keep) })
}

export function deserializeError(text: string): Error & { code?: string } {
  const e = JSON.parse(text) as SerializedError
  if (e.code && OWN_CODES.has(e.code))
    return new ConveyorError(e.code as ConveyorErrorCode, e.message)
  const error: Error & { code?: string } = new Error(e.message)
  error.name = e.name
  if (e.stack) error.stack = e.stack
  if (e.code) error.code = e.code
  return error
}

/** Whether conveyor's own step failed (the handler did not: no 'failed' event). */
export function isOwnError(error: Error & { code?: string }): boolean {
  return error.code !== undefined && OWN_CODES.has(error.code)
}
