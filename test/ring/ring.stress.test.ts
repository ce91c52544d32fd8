import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
// The worker imports the compiled ring (dist/), so the writer does too: both sides run the
// same code. Build with `npx tsc -p .` before running this file.
import { createRingBuffer, RingState, RingWriter } from '../../dist/src/ring/index.js'
import { FNV_OFFSET, fillRecord, sizeOf, tagOf } from './fixtures/payload.mjs'

const CAPACITY = 4096
const RECORDS = 10_000_000
const MAX_SIZE = 200
/** The reader publishes RELEASE after this many finished bytes (and always before sleeping). */
const RELEASE_BYTES = 2048
/** The writer publishes WRITE after this many records (and always before waiting for room). */
const PUBLISH_EVERY = 32
/**
 * Both sides wait in slices this long. Neither side ever legitimately makes the other wait a
 * whole slice, so a wait that lasts a slice although the other side moved is a lost wake-up.
 */
const SLICE_MS = 1000
/** Give up when the reader makes no progress at all for this long. */
const STALL_MS = 20_000

interface ReaderReport {
  count: number
  checksum: number
  error: string | null
  releases: number
  sleeps: number
  lateWakes: number
  lateCloseWakes: number
  crossings: number
}

interface WriterReport {
  count: number
  checksum: number
  waits: number
  lostWakeups: number
  crossings: number
}

async function stress(initialCursor: number) {
  const sab = createRingBuffer(CAPACITY, initialCursor)
  const writer = new RingWriter(sab)
  let report: ReaderReport | undefined
  let failure: Error | undefined
  const worker = new Worker(new URL('./fixtures/stress-reader.mjs', import.meta.url), {
    workerData: {
      sab,
      count: RECORDS,
      maxSize: MAX_SIZE,
      releaseBytes: RELEASE_BYTES,
      sliceMs: SLICE_MS,
    },
  })
  const finished = new Promise<ReaderReport>((resolve, reject) => {
    worker.on('message', (message: ReaderReport) => {
      report = message
      resolve(message)
    })
    worker.on('error', (err) => {
      failure = err
      reject(err)
    })
    worker.on('exit', (code) => {
      if (report === undefined) {
        failure ??= new Error(`reader worker exited with code ${code} before reporting`)
        reject(failure)
      }
    })
  })
  finished.catch(() => {}) // observed below; avoid an unhandled rejection while writing

  try {
    const bytes = writer.bytes
    const w: WriterReport = {
      count: 0,
      checksum: FNV_OFFSET,
      waits: 0,
      lostWakeups: 0,
      crossings: 0,
    }
    let lastCursor = writer.cursor
    for (let seq = 0; seq < RECORDS; seq++) {
      const length = sizeOf(seq, MAX_SIZE)
      let at = writer.reserve(length)
      const waitStart = at < 0 ? performance.now() : 0
      while (at < 0) {
        // Backpressure. The reader only sees published records, so publish before waiting;
        // take `seen` before the last reserve() so that a release in between is not missed.
        writer.publish()
        const seen = writer.released
        at = writer.reserve(length)
        if (at >= 0) break
        if (report !== undefined || failure !== undefined) {
          throw new Error(`reader stopped at record ${report?.count}: ${report?.error ?? failure}`)
        }
        if (performance.now() - waitStart >= STALL_MS) {
          throw new Error(`no room for record ${seq} for ${STALL_MS} ms: the reader stalled`)
        }
        w.waits++
        const t0 = performance.now()
        await writer.waitForRelease(seen, SLICE_MS)
        // A whole slice passed although RELEASE moved: its notification was lost.
        if (performance.now() - t0 >= SLICE_MS && writer.released !== seen) {
          w.lostWakeups++
          throw new Error(
            `lost wake-up: RELEASE moved from ${seen} to ${writer.released}, yet waitForRelease() slept ${SLICE_MS} ms`,
          )
        }
        at = writer.reserve(length)
      }
      w.checksum = fillRecord(bytes, at, seq, length, w.checksum)
      writer.commit(length, tagOf(seq))
      w.count++
      if (writer.cursor < lastCursor) w.crossings++
      lastCursor = writer.cursor
      if (seq % PUBLISH_EVERY === PUBLISH_EVERY - 1) writer.publish()
    }
    writer.close()
    expect(writer.state).toBe(RingState.CLOSING)
    let timer: NodeJS.Timeout | undefined
    const r = await Promise.race([
      finished,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('reader did not finish after close()')), STALL_MS)
      }),
    ]).finally(() => clearTimeout(timer))
    return { writer: w, reader: r, releasedAtEnd: writer.released, cursorAtEnd: writer.cursor }
  } finally {
    await worker.terminate()
  }
}

describe('two-thread stress: 10M variable-size records through a 4 KiB ring', () => {
  it.each([
    ['starting at cursor 0', 0],
    ['starting just below 2^32', 2 ** 32 - CAPACITY],
  ])('%s', async (_name, initialCursor) => {
    const t0 = performance.now()
    const { writer, reader, releasedAtEnd, cursorAtEnd } = await stress(initialCursor)
    const seconds = ((performance.now() - t0) / 1000).toFixed(1)
    console.log(
      `stress from ${initialCursor}: ${seconds}s, writer waits ${writer.waits}, ` +
        `reader releases ${reader.releases}, sleeps ${reader.sleeps}, crossings of 2^32 ` +
        `${writer.crossings}/${reader.crossings}, late close wake-ups ${reader.lateCloseWakes}`,
    )
    expect(reader.error).toBeNull()
    expect(writer.count).toBe(RECORDS)
    expect(reader.count).toBe(RECORDS)
    expect(reader.checksum).toBe(writer.checksum)
    // Everything read was finished and handed back.
    expect(releasedAtEnd).toBe(cursorAtEnd)
    // With wait slices a lost wake-up costs a slice instead of a hang; both sides fail on one.
    expect(writer.lostWakeups).toBe(0)
    expect(reader.lateWakes).toBe(0)
    // Both sides actually waited for each other (the backpressure paths ran).
    expect(writer.waits).toBeGreaterThan(0)
    expect(reader.sleeps).toBeGreaterThan(0)
    if (initialCursor !== 0) {
      expect(writer.crossings).toBeGreaterThanOrEqual(1)
      expect(reader.crossings).toBeGreaterThanOrEqual(1)
    }
  })
})
