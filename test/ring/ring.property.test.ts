import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CONTROL_BYTES, HEADER_BYTES, recordBytes } from '../../src/ring/index.js'
import { drain, makeRing, pattern, readNext } from './helpers.js'

const U32 = 2 ** 32

/** Initial cursors: 0, just below 2^32 (so a run crosses it), or anywhere. */
function initialCursor(capacity: number) {
  return fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: (2 * capacity) / 8 }).map((k) => U32 - 8 * k),
    fc.integer({ min: 0, max: U32 / 8 - 1 }).map((k) => 8 * k),
  )
}

type Op =
  | { kind: 'write'; size: number; shrink: number; tag: number }
  | { kind: 'publish' }
  | { kind: 'read'; count: number }
  | { kind: 'release' }

function ops(maxPayload: number) {
  const size = fc.oneof(
    fc.constant(0),
    fc.constant(maxPayload),
    fc.integer({ min: 0, max: maxPayload }),
    fc.integer({ min: 0, max: 16 }),
  )
  const op: fc.Arbitrary<Op> = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constant('write' as const),
        size,
        // 0: commit all that was reserved; else commit less (reserve() takes a maximum).
        shrink: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: maxPayload })),
        tag: fc.integer({ min: 0, max: 0x7fffffff }),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ kind: 'publish' as const }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('read' as const),
        count: fc.integer({ min: 1, max: 8 }),
      }),
    },
    { weight: 2, arbitrary: fc.constant({ kind: 'release' as const }) },
  )
  return fc.array(op, { minLength: 1, maxLength: 300, size: 'max' })
}

interface Model {
  seq: number
  length: number
  tag: number
  /** Cursor of its header. */
  start: number
  /** Payload offset into the buffer. */
  at: number
}

let crossings = 0

/** A cheap assertion (the model checks run millions of times; expect() is slow for that). */
function eq(actual: unknown, expected: unknown, what: string) {
  if (actual !== expected) throw new Error(`${what}: got ${actual}, expected ${expected}`)
}

function sameBytes(actual: Uint8Array, expected: Uint8Array, what: string) {
  eq(actual.length, expected.length, `${what} length`)
  if (Buffer.compare(actual, expected) !== 0) throw new Error(`${what}: payload bytes differ`)
}

/**
 * Runs `script` against a ring and against a model: a FIFO of records, the model's own
 * write / publish / read / release cursors, and an independent account of where each record
 * must land (never straddling the end of the byte area).
 */
function check(capacity: number, initial: number, script: Op[]) {
  const { writer, reader } = makeRing(capacity, initial)
  const maxPayload = writer.maxPayload
  let head = initial // end of the last committed record (the model's write cursor)
  let published = initial
  let readCursor = initial
  let released = initial
  const unread: Model[] = [] // committed, not yet read (published or not)
  const held: Model[] = [] // read, not yet released
  let seq = 0
  const used = () => (head - released + U32) % U32

  const verify = (record: Model) =>
    sameBytes(
      writer.bytes.subarray(record.at, record.at + record.length),
      pattern(record.length, record.seq),
      `held record ${record.seq}`,
    )

  const readOne = (): boolean => {
    const read = readNext(reader)
    const visible =
      unread.length > 0 && unread[0].start !== published && isBefore(unread[0], published)
    if (!visible) {
      eq(read, undefined, 'next() with nothing published')
      return false
    }
    const record = unread.shift()!
    if (read === undefined) throw new Error(`record ${record.seq} is published but not read`)
    eq(read.start, record.start, 'record start')
    eq(read.at, record.at, 'payload offset')
    eq(read.length, record.length, 'length')
    eq(read.tag, record.tag, 'tag')
    sameBytes(read.payload, pattern(record.length, record.seq), `record ${record.seq}`)
    readCursor = (record.start + recordBytes(record.length)) % U32
    eq(reader.cursor, readCursor, 'reader cursor')
    held.push(record)
    return true
  }

  /** Whether `record` lies before the published cursor (the ring holds < 2^32 bytes). */
  const isBefore = (record: Model, cursor: number) =>
    (cursor - record.start + U32) % U32 <= capacity && (cursor - record.start + U32) % U32 > 0

  for (const op of script) {
    switch (op.kind) {
      case 'write': {
        const pos = head % capacity
        const tail = capacity - pos
        const need = recordBytes(op.size)
        const wraps = need > tail
        const fits = (wraps ? tail + need : need) <= capacity - used()
        // Liveness: an empty ring always takes the largest record.
        if (used() === 0) eq(fits, true, 'empty ring takes the record')
        eq(writer.hasRoom(op.size), fits, `hasRoom(${op.size})`)
        const at = writer.reserve(op.size)
        if (!fits) {
          eq(at, -1, `reserve(${op.size}) on a ring without room`)
          break
        }
        const start = wraps ? (head + tail) % U32 : head
        eq(at, CONTROL_BYTES + (start % capacity) + HEADER_BYTES, `reserve(${op.size})`)
        eq(at % 8, 0, 'payload alignment')
        const length = op.shrink === 0 ? op.size : Math.min(op.size, op.shrink)
        writer.bytes.set(pattern(length, seq), at)
        writer.commit(length, op.tag)
        const next = (start + recordBytes(length)) % U32
        if (next < head) crossings++
        head = next
        unread.push({ seq, length, tag: op.tag, start, at })
        seq++
        break
      }
      case 'publish':
        writer.publish()
        published = head
        break
      case 'read':
        for (let i = 0; i < op.count && readOne(); i++);
        break
      case 'release':
        // The writer never touched what was read and not yet released.
        for (const record of held) verify(record)
        reader.release()
        released = readCursor
        held.length = 0
        break
    }
    eq(writer.cursor, head, 'writer cursor')
    eq(reader.cursor, readCursor, 'reader cursor')
    eq(writer.released, released, 'released')
    eq(writer.backlog, used(), 'backlog')
    if (used() > capacity) throw new Error(`${used()} bytes in a ring of ${capacity}`)
    eq(reader.hasNext(), unread.length > 0 && isBefore(unread[0], published), 'hasNext()')
  }

  // Drain: everything committed comes out, in order, intact.
  writer.publish()
  published = head
  while (readOne());
  eq(unread.length, 0, 'records left unread')
  for (const record of held) verify(record)
  reader.release()
  eq(writer.backlog, 0, 'backlog after draining')
  eq(reader.next(), -1, 'next() after draining')
  // The liveness guarantee once more, from wherever the cursor ended.
  if (writer.reserve(maxPayload) < 0) throw new Error('an empty ring refused the largest record')
}

describe('ring against a model queue (single thread)', () => {
  it.each([64, 256, 1024])('capacity %i: random writes, publishes, reads, releases', (capacity) => {
    const maxPayload = capacity / 2 - HEADER_BYTES
    crossings = 0
    fc.assert(
      fc.property(initialCursor(capacity), ops(maxPayload), (initial, script) => {
        check(capacity, initial, script)
      }),
      { numRuns: 300, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
    )
    // Some runs did take the cursors across 2^32.
    expect(crossings).toBeGreaterThan(0)
  })

  it('fixed scripts: full ring of largest records, and a wrap right at 2^32', () => {
    const write = (size: number): Op => ({ kind: 'write', size, shrink: 0, tag: size })
    const max = 256 / 2 - HEADER_BYTES
    check(256, 0, [
      write(max),
      write(max),
      write(0),
      { kind: 'publish' },
      { kind: 'read', count: 1 },
    ])
    check(256, U32 - 8, [write(0), write(max), { kind: 'publish' }, { kind: 'read', count: 8 }])
    check(256, U32 - 16, [write(0), write(max), write(max), { kind: 'release' }, write(1)])
  })
})

describe('unicode strings round-trip through the ring', () => {
  const strings = fc.array(
    fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 60 }),
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.string({ unit: 'grapheme-composite', maxLength: 40 }),
      fc.constantFrom('', 'ascii', 'é', '😀', '👩‍👩‍👧‍👦', '\u0000', 'a\u0300', '𝄞'.repeat(30)),
    ),
    { minLength: 1, maxLength: 80, size: 'max' },
  )

  it.each([256, 1024])('capacity %i', (capacity) => {
    fc.assert(
      fc.property(initialCursor(capacity), strings, fc.nat(3), (initial, input, slack) => {
        const { sab, writer, reader } = makeRing(capacity, initial)
        const buffer = Buffer.from(sab)
        const fitting = input.filter((s) => Buffer.byteLength(s) <= writer.maxPayload)
        const output: string[] = []
        const readAll = () => {
          writer.publish()
          for (const r of drain(reader)) {
            eq(r.tag, output.length, 'tag')
            // Decode from the ring itself, not from a copy.
            output.push(buffer.toString('utf8', r.at, r.at + r.length))
          }
          reader.release()
        }
        fitting.forEach((str, i) => {
          const bytes = Buffer.byteLength(str)
          // Sometimes reserve more than needed, as an encoder that only knows a bound would.
          const reserve = Math.min(writer.maxPayload, bytes + slack * 8)
          let at = writer.reserve(reserve)
          if (at < 0) {
            readAll()
            at = writer.reserve(reserve)
            // An empty ring takes any allowed record.
            if (at < 0) throw new Error(`reserve(${reserve}) failed on an empty ring`)
          }
          eq(buffer.write(str, at, 'utf8'), bytes, 'bytes written')
          writer.commit(bytes, i)
          if (i % 3 === 0) writer.publish()
        })
        readAll()
        // Plain comparisons: a failing expect() builds a diff, which makes shrinking crawl.
        eq(output.length, fitting.length, 'strings read')
        for (const [i, str] of output.entries()) eq(str, fitting[i], `string ${i}`)
      }),
      { numRuns: 200, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: true },
    )
  })
})
