import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { SAMPLES_AT, STAT_SLOTS, statsBytes } from '../../src/lane/protocol.js'
import {
  mailboxBytes,
  SAMPLE_EVERY,
  SampleMailboxReader,
  SampleMailboxWriter,
  sampleSlots,
} from '../../src/lane/sample-mailbox.js'

const U32 = 2 ** 32
/** The mailbox's counters, as sample-mailbox.ts lays them out (a crash leaves them so). */
const POSTED = 0
const CLAIMED = 1

function mailbox(ringCapacity = 4096) {
  const stats = new SharedArrayBuffer(statsBytes(ringCapacity))
  const ints = new Int32Array(stats, SAMPLES_AT)
  return {
    stats,
    ints,
    slots: sampleSlots(ringCapacity),
    writer: () => new SampleMailboxWriter(stats, SAMPLES_AT),
    reader: () => new SampleMailboxReader(stats, SAMPLES_AT),
  }
}

/** What take() found, or undefined. */
function taken(reader: SampleMailboxReader, end: number) {
  return reader.take(end) ? { startedAt: reader.startedAt, serviceMs: reader.serviceMs } : undefined
}

describe('sample mailbox sizing', () => {
  it('has room for every sampled record a ring can hold unsettled, up to its cap', () => {
    for (let capacity = 4096; capacity <= 2 ** 30; capacity *= 2) {
      const slots = sampleSlots(capacity)
      expect(Number.isInteger(Math.log2(slots))).toBe(true)
      const sampledRecords = capacity / 8 / SAMPLE_EVERY
      if (capacity <= 4 * 2 ** 20) expect(slots).toBeGreaterThan(sampledRecords)
      else expect(slots).toBe(2 ** 16)
    }
  })

  it('sits after the stat slots, inside the stats buffer', () => {
    expect(SAMPLES_AT).toBe(STAT_SLOTS * 8)
    expect(statsBytes(4096)).toBe(SAMPLES_AT + mailboxBytes(4096))
  })
})

describe('sample mailbox', () => {
  // A lane's reader exists before its first worker: make it first, as the lane does.
  it('hands over each sample, matched by end cursor, with exact times', () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    writer.post(64, 1.25, 0.5)
    writer.post(128, 2.5, 1e-6)
    const origin = performance.timeOrigin
    expect(taken(reader, 64)).toEqual({ startedAt: origin + 1.25, serviceMs: 0.5 })
    expect(taken(reader, 128)).toEqual({ startedAt: origin + 2.5, serviceMs: 1e-6 })
  })

  it('finds nothing before the sample is posted, and finds it after', () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    expect(reader.take(64)).toBe(false)
    writer.post(64, 1, 1)
    expect(reader.take(64)).toBe(true)
  })

  it("leaves a later record's sample for its own take() when a sample never came", () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    // The record ending at 64 killed its worker: no sample. 128 was handled next.
    writer.post(128, 2, 2)
    expect(reader.take(64)).toBe(false)
    expect(taken(reader, 128)?.serviceMs).toBe(2)
  })

  it('takes the later of two samples of one record (handled again after a crash)', () => {
    const m = mailbox()
    const reader = m.reader()
    m.writer().post(64, 1, 1)
    // The worker died after posting, before DONE; a new one handled the record again.
    const again = m.writer()
    again.post(64, 5, 3)
    again.post(128, 9, 4)
    expect(taken(reader, 64)?.serviceMs).toBe(3)
    expect(taken(reader, 128)?.serviceMs).toBe(4)
  })

  it('passes over samples of records it was never asked about', () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    writer.post(64, 1, 1)
    writer.post(128, 2, 2)
    writer.post(192, 3, 3)
    expect(taken(reader, 192)?.serviceMs).toBe(3)
    // Passed over for good.
    expect(reader.take(64)).toBe(false)
  })

  it('loses the samples a worker overwrote a lap later, and keeps the rest', () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    const laps = m.slots + 10
    for (let i = 1; i <= laps; i++) writer.post(8 * i, i, i)
    // The first 10 were overwritten by the last 10.
    for (let i = 1; i <= 10; i++) expect(reader.take(8 * i)).toBe(false)
    for (let i = 11; i <= laps; i++) expect(taken(reader, 8 * i)?.serviceMs).toBe(i)
  })

  it('drops a sample whose entry a later one had begun to overwrite while it was read', () => {
    const m = mailbox()
    const writer = m.writer()
    const reader = m.reader()
    writer.post(8, 1, 1)
    for (let i = 2; i <= m.slots; i++) writer.post(8 * i, i, i)
    // The worker claims sample `slots` (entry 0, sample 0's) and is writing it: sample 0 is
    // still posted, but no longer intact.
    Atomics.store(m.ints, CLAIMED, m.slots + 1)
    expect(reader.take(8)).toBe(false)
    expect(taken(reader, 16)?.serviceMs).toBe(2)
  })

  it('never hands out an entry a dead worker left half-written; its replacement rewrites it', () => {
    const m = mailbox()
    const reader = m.reader()
    m.writer().post(64, 1, 1)
    // A worker died inside post(): claimed sample 1, wrote part of it, never posted it.
    Atomics.store(m.ints, CLAIMED, 2)
    expect(Atomics.load(m.ints, POSTED)).toBe(1)
    expect(taken(reader, 64)?.serviceMs).toBe(1)
    expect(reader.take(128)).toBe(false)
    // The replacement continues at POSTED, so sample 1 is whole when it is posted.
    m.writer().post(128, 2, 2)
    expect(taken(reader, 128)?.serviceMs).toBe(2)
  })

  it('matches cursors across 2^32, and counts across 2^32', () => {
    const m = mailbox()
    // Counters just below 2^32, as after ~68 billion sampled messages.
    Atomics.store(m.ints, POSTED, -3)
    Atomics.store(m.ints, CLAIMED, -3)
    const writer = m.writer()
    const reader = m.reader()
    for (let i = 0; i < 8; i++) {
      const end = (U32 - 16 + 8 * i) % U32
      writer.post(end, i, i)
      expect(taken(reader, end)?.serviceMs).toBe(i)
    }
    expect(Atomics.load(m.ints, POSTED)).toBe(5)
  })

  it('hands over only intact samples while a worker thread laps the mailbox', async () => {
    // The worker posts `count` samples whose fields all derive from one number i, into the
    // smallest mailbox; the main thread keeps asking for the oldest sample still posted, the
    // very entry the worker overwrites next. A torn read would break the link between fields.
    const m = mailbox(4096)
    const count = 300_000
    const released = new Int32Array(new SharedArrayBuffer(4))
    const worker = new Worker(new URL('../fixtures/mailbox-poster.mjs', import.meta.url), {
      workerData: { stats: m.stats, at: SAMPLES_AT, released: released.buffer, count },
    })
    const exited = new Promise((resolve, reject) => {
      worker.once('exit', resolve)
      worker.once('error', reject)
    })
    const reader = m.reader()
    let asked = 0
    let found = 0
    const torn: number[] = []
    while (asked < count) {
      const upTo = Atomics.load(released, 0)
      const oldest = Math.max(asked + 1, upTo - m.slots + 1)
      if (oldest > upTo) continue
      asked = oldest
      if (!reader.take(8 * asked)) continue
      found++
      if (reader.serviceMs !== asked / 7 || Math.abs(reader.startedAt - asked * 3) > 1e-3) {
        torn.push(asked)
      }
    }
    await exited
    expect(torn).toEqual([])
    expect(found).toBeGreaterThan(0)
  })
})
