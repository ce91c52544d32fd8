/**
 * UTF-8 into and out of a ring's Buffer view, for every string that crosses a lane: a string
 * codec's output on the main thread, the json and string codecs' input in workers.
 *
 * Buffer#write and #toString end in Buffer's own utf8Write and utf8Slice; calling those
 * directly skips the argument handling that costs, on Node 20, ~8 % of encoding a 256-byte
 * string and ~20 % of decoding one (a lane's largest per-message costs with a cheap handler).
 * They are not in Node's typings, so they are looked up once, with the public methods as the
 * fallback should a Node version drop them. Both take the same bounds the public ones would:
 * callers pass offsets inside the buffer.
 */
interface Utf8Methods {
  utf8Write?(text: string, offset: number, maxBytes: number): number
  utf8Slice?(start: number, end: number): string
}

const proto = Buffer.prototype as Buffer & Utf8Methods
const direct = typeof proto.utf8Write === 'function' && typeof proto.utf8Slice === 'function'

/** Writes `text` at `offset`, at most `maxBytes` (whole characters only); returns the bytes written. */
export const writeUtf8: (buffer: Buffer, text: string, offset: number, maxBytes: number) => number =
  direct
    ? (buffer, text, offset, maxBytes) =>
        (buffer as Buffer & Required<Utf8Methods>).utf8Write(text, offset, maxBytes)
    : (buffer, text, offset, maxBytes) => buffer.write(text, offset, maxBytes, 'utf8')

/** The text of bytes [start, end). */
export const readUtf8: (buffer: Buffer, start: number, end: number) => string = direct
  ? (buffer, start, end) => (buffer as Buffer & Required<Utf8Methods>).utf8Slice(start, end)
  : (buffer, start, end) => buffer.toString('utf8', start, end)
