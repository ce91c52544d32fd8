import { describe, expect, it, vi } from 'vitest'
import { ConveyorError, isConveyorError } from '../../src/errors.js'
import {
  CONTROL_BYTES,
  capacityOf,
  createRingBuffer,
  HEADER_BYTES,
  MAX_CAPACITY,
  MIN_CAPACITY,
  maxPayloadBytes,
  RingReader,
  RingState,
  RingWriter,
  recordBytes,
  SLOT,
} from '../../src/ring/index.js'
import { drain, makeRing, pattern, readNext, sleep, track, within, wordAt } from './helpers.js'

const WRAP = -1

describe('createRingBuffer', () => {
  it.each([0, -64, 63, 96, 100, 1000, 65.5, Number.NaN, 3 * 2 ** 20])(
    'rejects capacity %s (not a power of two)',
    (capacity) => {
      expect(() => createRingBuffer(capacity)).toThrow(RangeError)
      expect(() => createRingBuffer(capacity)).toThrow(/power of two/)
    },
  )

  it('rejects powers of two outside [MIN_CAPACITY, MAX_CAPACITY]', () => {
    expect(() => createRingBuffer(MIN_CAPACITY / 2)).toThrow(RangeError)
    expect(() => createRingBuffer(MAX_CAPACITY * 2)).toThrow(RangeError)
  })

  it('allocates the control block plus the byte area', () => {
    for (const capacity of [MIN_CAPACITY, 256, 4096]) {
      const sab = createRingBuffer(capacity)
      expect(sab.byteLength).toBe(CONTROL_BYTES + capacity)
      expect(capacityOf(sab)).toBe(capacity)
      expect(new RingWriter(sab).capacity).toBe(capacity)
      expect(new RingReader(sab).capacity).toBe(capacity)
    }
  })

  it('rejects an initial cursor that is not a multiple of 8', () => {
    expect(() => createRingBuffer(256, 4)).toThrow(RangeError)
    expect(() => createRingBuffer(256, 2 ** 32 - 1)).toThrow(RangeError)
  })

  it('starts every cursor at the initial cursor, also above 2^31', () => {
    for (const initial of [0, 8, 2 ** 31, 2 ** 32 - 8, 2 ** 32 - 4096]) {
      const { writer, reader } = makeRing(256, initial)
      expect(writer.cursor).toBe(initial)
      expect(writer.released).toBe(initial)
      expect(writer.backlog).toBe(0)
      expect(reader.cursor).toBe(initial)
      expect(writer.state).toBe(RingState.OPEN)
      expect(reader.state).toBe(RingState.OPEN)
    }
  })

  it('refuses to wrap a buffer that is not a ring', () => {
    expect(() => new RingWriter(new SharedArrayBuffer(CONTROL_BYTES + 100))).toThrow(RangeError)
    expect(() => new RingReader(new SharedArrayBuffer(16))).toThrow(RangeError)
  })
})

describe('framing', () => {
  it('round-trips length, tag and payload, 8-byte aligned, header right before the payload', () => {
    const { writer, reader, view } = makeRing(4096)
    let expectedCursor = 0
    for (let length = 0; length <= 40; length++) {
      const tag = length * 7919
      const payload = pattern(length, length)
      expect(writer.write(payload, tag)).toBe(true)
      writer.publish()
      const read = readNext(reader)
      expect(read).toBeDefined()
      expect(read!.at % 8).toBe(0)
      expect(read!.at).toBe(CONTROL_BYTES + expectedCursor + HEADER_BYTES)
      expect(read!.start).toBe(expectedCursor)
      expect(read!.length).toBe(length)
      expect(read!.tag).toBe(tag)
      expect(read!.payload).toEqual(payload)
      // On the wire: [length u32 | tag u32] little-endian, then the payload.
      expect(view.getUint32(read!.at - 8, true)).toBe(length)
      expect(view.getUint32(read!.at - 4, true)).toBe(tag)
      // The record takes header + payload rounded up to 8 bytes.
      expectedCursor += recordBytes(length)
      expect(recordBytes(length) % 8).toBe(0)
      expect(recordBytes(length)).toBeGreaterThanOrEqual(HEADER_BYTES + length)
      expect(recordBytes(length)).toBeLessThan(HEADER_BYTES + length + 8)
      expect(writer.cursor).toBe(expectedCursor)
      expect(reader.cursor).toBe(expectedCursor)
      reader.release()
    }
  })

  it('round-trips tags below 2^31', () => {
    const { writer, reader } = makeRing(256)
    for (const tag of [0, 1, 0xff00, 0x12345678, 0x7fffffff]) {
      writer.write(pattern(3, tag), tag)
      writer.publish()
      const read = readNext(reader)
      expect(read?.tag).toBe(tag)
      reader.release()
    }
  })

  // The header is [length u32 | tag u32]: tags >= 2^31 must not come back negative from the
  // Int32Array the reader reads them through.
  it('round-trips tags >= 2^31 as the u32 that layout.ts documents', () => {
    const { writer, reader } = makeRing(256)
    for (const tag of [0x80000000, 0xdeadbeef, 0xffffffff]) {
      writer.write(pattern(3, tag), tag)
      writer.publish()
      const read = readNext(reader)
      expect(read?.tag).toBe(tag)
      reader.release()
    }
  })

  it('carries a zero-length record (header only)', () => {
    const { writer, reader } = makeRing(256)
    expect(writer.write(new Uint8Array(0), 42)).toBe(true)
    expect(writer.write(pattern(5, 1), 43)).toBe(true)
    expect(writer.write(new Uint8Array(0), 44)).toBe(true)
    expect(writer.cursor).toBe(8 + 16 + 8)
    writer.publish()
    const reads = drain(reader)
    expect(reads.map((r) => [r.length, r.tag, r.start])).toEqual([
      [0, 42, 0],
      [5, 43, 8],
      [0, 44, 24],
    ])
    expect(reads[1].payload).toEqual(pattern(5, 1))
    expect(reader.cursor).toBe(32)
  })

  it('commits fewer bytes than reserved: only the committed length is used', () => {
    const { writer, reader } = makeRing(256)
    const at = writer.reserve(100)
    expect(at).toBe(CONTROL_BYTES + HEADER_BYTES)
    writer.bytes.set([1, 2, 3], at)
    writer.commit(3, 9)
    expect(writer.cursor).toBe(16)
    expect(writer.write(pattern(4, 2), 10)).toBe(true)
    writer.publish()
    const reads = drain(reader)
    expect(reads.map((r) => [r.start, r.length, r.tag])).toEqual([
      [0, 3, 9],
      [16, 4, 10],
    ])
    expect(reads[0].payload).toEqual(new Uint8Array([1, 2, 3]))
  })

  describe.each([64, 256, 4096])('largest record, capacity %i', (capacity) => {
    const maxPayload = capacity / 2 - HEADER_BYTES

    it('maxPayload is half the ring minus the header', () => {
      const { writer } = makeRing(capacity)
      expect(writer.maxPayload).toBe(maxPayload)
      expect(maxPayloadBytes(capacity)).toBe(maxPayload)
    })

    it('fits an empty ring at every position, and round-trips', () => {
      for (let pos = 0; pos < capacity; pos += 8) {
        const { writer, reader } = makeRing(capacity, 2 ** 32 - capacity + pos)
        const payload = pattern(maxPayload, pos)
        expect(writer.write(payload, pos)).toBe(true)
        writer.publish()
        const reads = drain(reader)
        expect(reads).toHaveLength(1)
        expect(reads[0].length).toBe(maxPayload)
        expect(reads[0].tag).toBe(pos)
        expect(Buffer.compare(reads[0].payload, payload)).toBe(0)
      }
    })

    it('one byte more throws MESSAGE_TOO_LARGE naming the size and the capacity', () => {
      const { writer, reader } = makeRing(capacity)
      const size = maxPayload + 1
      let caught: unknown
      try {
        writer.reserve(size)
      } catch (err) {
        caught = err
      }
      expect(caught).toBeInstanceOf(ConveyorError)
      expect(isConveyorError(caught, 'MESSAGE_TOO_LARGE')).toBe(true)
      const message = (caught as ConveyorError).message
      expect(message).toContain(`${size} bytes`)
      expect(message).toContain(`${capacity} bytes`)
      // The capacity it suggests really takes the record.
      const suggested = Number(/at least (\d+)/.exec(message)?.[1])
      expect(maxPayloadBytes(suggested)).toBeGreaterThanOrEqual(size)
      // write() throws too, rather than returning false (no wait could ever make room).
      expect(() => writer.write(new Uint8Array(size))).toThrow(
        expect.objectContaining({ code: 'MESSAGE_TOO_LARGE' }),
      )
      // Nothing changed: the ring still works.
      expect(writer.cursor).toBe(0)
      expect(writer.write(pattern(maxPayload, 1), 1)).toBe(true)
      writer.publish()
      expect(drain(reader).map((r) => r.length)).toEqual([maxPayload])
    })
  })
})

describe('wrap', () => {
  it('a record that would straddle the end leaves a wrap marker and starts at offset 0', () => {
    const { writer, reader, view } = makeRing(256)
    // Three 80-byte records end at 240, leaving a 16-byte tail.
    for (let i = 0; i < 3; i++) expect(writer.write(pattern(72, i), i)).toBe(true)
    writer.publish()
    expect(drain(reader)).toHaveLength(3)
    reader.release()
    expect(writer.cursor).toBe(240)

    const payload = pattern(72, 3)
    const at = writer.reserve(72)
    expect(at).toBe(CONTROL_BYTES + HEADER_BYTES)
    expect(wordAt(view, 240)).toBe(WRAP)
    writer.bytes.set(payload, at)
    writer.commit(72, 3)
    expect(writer.cursor).toBe(256 + 80)
    writer.publish()

    const reads = drain(reader)
    expect(reads).toHaveLength(1)
    expect(reads[0]).toMatchObject({
      at: CONTROL_BYTES + HEADER_BYTES,
      start: 256,
      length: 72,
      tag: 3,
    })
    // Contiguous: the whole payload lies in one view.
    expect(reads[0].payload).toEqual(payload)
    expect(reader.cursor).toBe(256 + 80)
    reader.release()
    // The skipped tail counts as released space too.
    expect(writer.backlog).toBe(0)
  })

  it('a record that ends exactly at the end needs no marker', () => {
    const { writer, reader, view } = makeRing(256)
    expect(writer.write(pattern(120, 0), 0)).toBe(true) // 128 bytes
    expect(writer.write(pattern(112, 1), 1)).toBe(true) // 120 bytes: ends at 248
    expect(writer.write(new Uint8Array(0), 2)).toBe(true) // 8 bytes: ends at 256
    writer.publish()
    expect(drain(reader)).toHaveLength(3)
    reader.release()
    view.setInt32(CONTROL_BYTES, 12345, true) // poison offset 0: the next header must overwrite it
    expect(writer.write(pattern(10, 3), 3)).toBe(true)
    expect(wordAt(view, 0)).toBe(10)
    writer.publish()
    expect(drain(reader).map((r) => [r.start, r.length, r.tag])).toEqual([[256, 10, 3]])
  })

  it('no marker and no move when the wrapped record does not fit yet', () => {
    const { writer, reader, view } = makeRing(256)
    for (let i = 0; i < 3; i++) expect(writer.write(pattern(72, i), i)).toBe(true) // to 240
    writer.publish()
    readNext(reader)
    reader.release() // 80 bytes free at the start, 16 at the end: 96 < 16 + 112
    const before = wordAt(view, 240)
    expect(writer.hasRoom(104)).toBe(false)
    expect(writer.reserve(104)).toBe(-1)
    expect(writer.cursor).toBe(240)
    expect(wordAt(view, 240)).toBe(before)
    // 72 bytes (80 with header) fit in the 80 bytes at the start after skipping the tail.
    expect(writer.hasRoom(72)).toBe(true)
    expect(writer.write(pattern(72, 9), 9)).toBe(true)
    expect(writer.backlog).toBe(256)
    writer.publish()
    expect(drain(reader).map((r) => [r.start, r.tag])).toEqual([
      [80, 1],
      [160, 2],
      [256, 9],
    ])
  })

  it('keeps records intact while the cursors cross 2^32', () => {
    const { writer, reader } = makeRing(256, 2 ** 32 - 64)
    let seq = 0
    let next = 0
    for (let round = 0; round < 50; round++) {
      while (writer.write(pattern(seq % 50, seq), seq)) seq++
      writer.publish()
      for (const read of drain(reader)) {
        expect(read.tag).toBe(next)
        expect(read.payload).toEqual(pattern(next % 50, next))
        next++
      }
      reader.release()
    }
    expect(next).toBe(seq)
    expect(seq).toBeGreaterThan(100)
    // The cursors went past 2^32 and came back as small unsigned numbers.
    expect(writer.cursor).toBeLessThan(2 ** 32 - 64)
    expect(reader.cursor).toBe(writer.cursor)
    expect(writer.released).toBe(writer.cursor)
  })
})

describe('backpressure', () => {
  it('a full ring refuses records until the reader releases', () => {
    const { writer, reader } = makeRing(256)
    let written = 0
    while (writer.write(pattern(24, written), written)) written++
    expect(written).toBe(8) // 8 × 32 bytes
    expect(writer.backlog).toBe(256)
    expect(writer.reserve(0)).toBe(-1)
    expect(writer.hasRoom(0)).toBe(false)
    expect(writer.write(new Uint8Array(0))).toBe(false)
    writer.publish()

    // Reading alone frees nothing.
    expect(readNext(reader)?.tag).toBe(0)
    expect(writer.reserve(0)).toBe(-1)
    // Releasing frees exactly what was read.
    reader.release()
    expect(writer.backlog).toBe(256 - 32)
    expect(writer.write(pattern(24, 8), 8)).toBe(true)
    expect(writer.write(new Uint8Array(0))).toBe(false)
    writer.publish()
    expect(drain(reader).map((r) => r.tag)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
  })

  it('never overwrites records that were read but not released', () => {
    const { writer, reader } = makeRing(256)
    let written = 0
    while (writer.write(pattern(24, written), written)) written++
    writer.publish()
    // The reader holds views of three records it is still handling.
    const held = [0, 1, 2].map(() => {
      const at = reader.next()
      return { at, view: reader.bytes.subarray(at, at + 24), copy: reader.bytes.slice(at, at + 24) }
    })
    for (let i = 0; i < 10; i++) {
      expect(writer.write(pattern(24, 100 + i), 100 + i)).toBe(false)
      expect(writer.reserve(0)).toBe(-1)
    }
    for (const { view, copy } of held) expect(view).toEqual(copy)
    // Once finished and released, that memory is the writer's again.
    reader.release()
    for (let i = 0; i < 3; i++) expect(writer.write(pattern(24, 100 + i), 100 + i)).toBe(true)
    expect(writer.write(new Uint8Array(0))).toBe(false)
    expect(held[0].view).toEqual(pattern(24, 100))
    writer.publish()
    expect(drain(reader).map((r) => r.tag)).toEqual([3, 4, 5, 6, 7, 100, 101, 102])
  })

  it('unpublished records are invisible until publish()', () => {
    const { writer, reader } = makeRing(256)
    for (let i = 0; i < 3; i++) writer.write(pattern(i, i), i)
    expect(reader.hasNext()).toBe(false)
    expect(reader.next()).toBe(-1)
    writer.publish()
    expect(reader.hasNext()).toBe(true)
    for (let i = 3; i < 5; i++) writer.write(pattern(i, i), i)
    expect(drain(reader).map((r) => r.tag)).toEqual([0, 1, 2])
    expect(reader.hasNext()).toBe(false)
    writer.publish()
    expect(drain(reader).map((r) => r.tag)).toEqual([3, 4])
  })
})

describe('close and drain', () => {
  it('the reader still reads every record after close(), published or not', () => {
    const { writer, reader } = makeRing(256)
    for (let i = 0; i < 3; i++) writer.write(pattern(10, i), i)
    writer.publish()
    for (let i = 3; i < 5; i++) writer.write(pattern(10, i), i) // not published by hand
    expect(readNext(reader)?.tag).toBe(0)
    writer.close()
    expect(writer.state).toBe(RingState.CLOSING)
    expect(reader.state).toBe(RingState.CLOSING)
    const reads = drain(reader)
    expect(reads.map((r) => r.tag)).toEqual([1, 2, 3, 4])
    for (const r of reads) expect(r.payload).toEqual(pattern(10, r.tag))
    expect(reader.next()).toBe(-1)
    expect(reader.hasNext()).toBe(false)
    reader.release()
    expect(writer.backlog).toBe(0)
    writer.close()
    expect(writer.state).toBe(RingState.CLOSING)
  })

  it('a reader does not sleep on a closed ring', async () => {
    const { writer, reader } = makeRing(256)
    writer.close()
    // true: it returned without parking (a park that timed out on an empty ring says false).
    expect(reader.waitSync(60_000)).toBe(true)
    expect(await reader.waitAsync(60_000)).toBe(true)
  })

  it('close() wakes a reader waiting asynchronously', async () => {
    const { writer, reader } = makeRing(256)
    const waiting = track(reader.waitAsync(10_000))
    await sleep(20)
    expect(waiting.settled).toBe(false)
    writer.close()
    expect(await within(waiting.promise, 2_000, 'waitAsync after close()')).toBe(false)
    expect(reader.state).toBe(RingState.CLOSING)
  })

  // Lost wake-up guard: a close() that lands between the reader's last state check and its
  // sleep must still wake it (it rings the doorbell the reader waits on, see doorbell.ts).
  // The test reproduces that interleaving in one thread by running close() right after the
  // reader's state check.
  it('close() between the reader’s last check and its sleep still wakes it', () => {
    const { writer, reader } = makeRing(256)
    const ctl = new Int32Array(reader.sab, 0, CONTROL_BYTES / 4)
    Object.defineProperty(reader, 'state', {
      configurable: true,
      get() {
        const state = Atomics.load(ctl, SLOT.STATE)
        writer.close() // the writer's thread runs here
        return state
      },
    })
    // A lost wake-up would sleep the whole minute; any wake-up at all returns far sooner.
    const t0 = performance.now()
    reader.waitSync(60_000)
    expect(performance.now() - t0).toBeLessThan(30_000)
  })
})

describe('waiting', () => {
  it('waitForRelease() resolves when the reader releases', async () => {
    const { writer, reader } = makeRing(256)
    writer.write(pattern(5, 1), 1)
    writer.publish()
    const seen = writer.released
    const waiting = track(writer.waitForRelease(seen))
    await sleep(20)
    expect(waiting.settled).toBe(false)
    readNext(reader)
    await sleep(20)
    expect(waiting.settled).toBe(false) // read is not finished
    reader.release()
    await within(waiting.promise, 2_000, 'waitForRelease')
    expect(writer.released).toBe(16)
  })

  it('waitForRelease() resolves at once when RELEASE already moved past `seen`', async () => {
    const { writer, reader } = makeRing(256)
    const seen = writer.released
    writer.write(pattern(5, 1), 1)
    writer.publish()
    readNext(reader)
    reader.release()
    await within(writer.waitForRelease(seen), 200, 'waitForRelease of a stale cursor')
  })

  it('waitForRelease() gives up after its timeout', async () => {
    const { writer } = makeRing(256)
    const t0 = performance.now()
    await within(writer.waitForRelease(writer.released, 30), 2_000, 'waitForRelease(30 ms)')
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25)
  })

  it('reader.waitAsync() resolves true when the writer publishes', async () => {
    const { writer, reader } = makeRing(256)
    const waiting = track(reader.waitAsync(10_000))
    await sleep(20)
    expect(waiting.settled).toBe(false)
    writer.write(pattern(7, 7), 7)
    await sleep(20)
    expect(waiting.settled).toBe(false) // committed but not published
    writer.publish()
    expect(await within(waiting.promise, 2_000, 'waitAsync')).toBe(true)
    expect(readNext(reader)?.tag).toBe(7)
  })

  it('reader.waitAsync() resolves false after its timeout on an empty open ring', async () => {
    const { reader } = makeRing(256)
    const t0 = performance.now()
    expect(await within(reader.waitAsync(30), 2_000, 'waitAsync(30 ms)')).toBe(false)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25)
  })

  it('reader.waitSync() returns false after its timeout on an empty open ring', () => {
    const { reader } = makeRing(256)
    const t0 = performance.now()
    expect(reader.waitSync(50)).toBe(false)
    const elapsed = performance.now() - t0
    expect(elapsed).toBeGreaterThanOrEqual(45)
  })

  it('reader.waitSync() does not sleep when a record is published', () => {
    const { writer, reader } = makeRing(256)
    writer.write(pattern(1, 1), 1)
    writer.publish()
    expect(reader.waitSync(60_000)).toBe(true)
  })

  // Lost wake-up guard: a writer that announces a new wait (WATCHED = 1) while the reader is
  // in the middle of release(), and parks only after release() rang, must still wake (an
  // announcement may be left over from an earlier wait that timed out). The test replays the
  // two threads' steps in one thread: it runs the writer's steps inside the reader's
  // Atomics.load(WATCHED) and defers the writer's Atomics.waitAsync until release() returned.
  it('a writer parking while the reader releases is woken by the next release', async () => {
    const { sab, writer, reader } = makeRing(256)
    for (let i = 0; i < 2; i++) writer.write(pattern(4, i), i)
    writer.publish()
    // A wait that timed out leaves WATCHED = 1 behind.
    await writer.waitForRelease(writer.released, 1)

    const realLoad = Atomics.load
    const realWaitAsync = Atomics.waitAsync
    let parkWriter: (() => void) | undefined
    let waiting: ReturnType<typeof track<void>> | undefined
    const loadSpy = vi.spyOn(Atomics, 'load').mockImplementation(((
      ta: Int32Array,
      index: number,
    ) => {
      const value = realLoad(ta, index)
      if (waiting === undefined && ta.buffer === sab && index === SLOT.WATCHED) {
        // Writer's thread, between the reader's load of WATCHED and its store of 0: it sees
        // the new RELEASE, has no room for its next record, and waits for the next release.
        waiting = track(writer.waitForRelease(writer.released, 1_500))
      }
      return value
    }) as typeof Atomics.load)
    const waitSpy = vi.spyOn(Atomics, 'waitAsync').mockImplementation(((
      ta: Int32Array,
      index: number,
      value: number,
      timeout?: number,
    ) => {
      // The writer's Atomics.waitAsync runs after the reader's notify.
      const parked = new Promise<'ok' | 'not-equal' | 'timed-out'>((resolve) => {
        parkWriter = () => {
          const result = realWaitAsync(ta, index, value, timeout)
          if (result.async) result.value.then(resolve)
          else resolve(result.value)
        }
      })
      return { async: true, value: parked }
    }) as typeof Atomics.waitAsync)
    try {
      readNext(reader)
      reader.release()
    } finally {
      loadSpy.mockRestore()
      waitSpy.mockRestore()
    }
    expect(waiting).toBeDefined()
    expect(parkWriter).toBeDefined()
    parkWriter!()

    // The reader goes on: it finishes the next record and releases it.
    readNext(reader)
    reader.release()
    await sleep(300)
    const woken = waiting!.settled
    await waiting!.promise
    expect(woken).toBe(true)
  })
})
