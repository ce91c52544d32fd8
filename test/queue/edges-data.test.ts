import { describe, expect, it } from 'vitest'
import { within } from './edges-helpers.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

const N = 5000

/** A message of `length` bytes in the codec's shape, as edge-count.mjs checks it. */
function tiny(codec: 'string' | 'bytes', length: number): string | Buffer {
  return codec === 'string' ? 'x'.repeat(length) : Buffer.alloc(length, length)
}

async function pushTiny(
  codec: 'string' | 'bytes',
  laneBytes: number,
  threads: number,
  lengthOf: (i: number) => number,
): Promise<void> {
  const count = new SharedArrayBuffer(12)
  const queue = makeQueue({
    handler: fixture('edge-count.mjs'),
    codec,
    laneBytes,
    threads,
    // The worker slower than the producer: the ring is full most of the time.
    workerData: { count, spinUs: 10 },
  })
  await queue.start()
  const acks = new Int32Array(N)
  let acked = 0
  let bytes = 0
  for (let i = 0; i < N; i++) {
    const length = lengthOf(i)
    bytes += length
    await queue.push(tiny(codec, length), {
      ack: () => {
        acks[i]++
        acked++
      },
    })
  }
  // Once the queue counts them all completed, stop(): every ack that will ever fire has then.
  await waitFor(
    () => acked >= N || queue.stats().completed >= N,
    `${N} messages completed (${acked} acked so far)`,
    20_000,
  )
  const report = await within(queue.stop(), 'stop()')
  const seen = new Int32Array(count)
  expect(acked).toBe(N)
  expect(acks.every((n) => n === 1)).toBe(true) // each ack exactly once
  expect({ calls: seen[0], bytes: seen[1], bad: seen[2] }).toEqual({ calls: N, bytes, bad: 0 })
  expect(queue.stats().completed).toBe(N)
  expect(report).toMatchObject({ pushed: N, completed: N, deadLettered: 0, unprocessed: [] })
}

describe('zero-length and tiny messages', () => {
  // Defect: with zero-length records (8 bytes each) a full ring holds as many records as the
  // ack FIFO has slots; a release landing between the FIFO check and the ring reservation
  // overflowed the FIFO and acks were lost.
  it.each([
    ['string', 4096, 1],
    ['string', 4096, 2],
    ['string', 16384, 1],
    ['string', 16384, 2],
    ['bytes', 4096, 1],
    ['bytes', 4096, 2],
    ['bytes', 16384, 1],
    ['bytes', 16384, 2],
  ] as const)(
    '%s codec, empty messages, laneBytes %d, threads %d: every one handled and acked once',
    async (codec, laneBytes, threads) => {
      await pushTiny(codec, laneBytes, threads, () => 0)
    },
  )

  // Defect: records of 1..8 payload bytes (one padded 16-byte record each) miscounted.
  it.each([
    ['string', 4096, 1],
    ['string', 4096, 2],
    ['bytes', 4096, 1],
    ['bytes', 4096, 2],
  ] as const)(
    '%s codec, 1..8-byte messages, laneBytes %d, threads %d: every one handled and acked once',
    async (codec, laneBytes, threads) => {
      await pushTiny(codec, laneBytes, threads, (i) => (i % 8) + 1)
    },
  )
})

describe('custom codec encode() returning something that is not a string or bytes', () => {
  const invalid = ['arraybuffer', 'dataview', 'array', 'number', 'undefined', 'null'] as const
  const valid = ['string', 'buffer', 'uint8array'] as const

  // Defect: an ArrayBuffer / DataView / array / number return was written as stale ring bytes
  // (or threw a raw TypeError) instead of rejecting with ENCODE_FAILED.
  it('push() rejects with ENCODE_FAILED, counts nothing, and the handler sees only valid messages, in order', async () => {
    const journal = new SharedArrayBuffer(4 * 1024)
    const queue = makeQueue({
      handler: fixture('edge-journal.mjs'),
      threads: 1,
      laneBytes: 4096,
      codec: { module: fixture('edge-codec.mjs') },
      workerData: { journal },
    })
    await queue.start()
    const sent: number[] = []
    const acked: number[] = []
    const wrongAcks: number[] = []
    const codes: string[] = []
    let id = 0
    // Rounds so the ring wraps: stale bytes from older records are under every write.
    for (let round = 0; round < 20; round++) {
      for (const as of valid) {
        const m = { as, id: id++ }
        await queue.push(m, { ack: () => acked.push(m.id) })
        sent.push(m.id)
        for (const bad of invalid) {
          const b = { as: bad, id: id++ }
          const err = await rejection(queue.push(b, { ack: () => wrongAcks.push(b.id) }))
          codes.push(err.code ?? String(err))
          expect(queue.stats().pushed).toBe(sent.length)
        }
      }
    }
    expect(codes).toEqual(Array(codes.length).fill('ENCODE_FAILED'))
    expect(codes).toHaveLength(20 * valid.length * invalid.length)
    await waitFor(() => acked.length === sent.length, 'the valid messages to be acked', 20_000)
    const report = await within(queue.stop(), 'stop()')
    const j = new Int32Array(journal)
    expect(Array.from(j.subarray(1, 1 + j[0]))).toEqual(sent)
    expect(acked).toEqual(sent)
    expect(wrongAcks).toEqual([])
    expect(report).toMatchObject({
      pushed: sent.length,
      completed: sent.length,
      deadLettered: 0,
      unprocessed: [],
    })
  })

  // Defect: run() with an invalid encode() return: same rule as push().
  it('run() rejects with ENCODE_FAILED too, and the next run() answers with its own message', async () => {
    const queue = makeQueue({
      handler: fixture('edge-journal.mjs'),
      threads: 1,
      laneBytes: 4096,
      codec: { module: fixture('edge-codec.mjs') },
    })
    await queue.start()
    let id = 0
    for (const bad of invalid) {
      const ok = { as: 'buffer', id: id++ }
      expect(await within(queue.run(ok), 'run()')).toEqual(ok)
      const err = await rejection(within(queue.run({ as: bad, id: id++ }), 'run()'))
      expect(err.code, String(err)).toBe('ENCODE_FAILED')
    }
    const last = { as: 'string', id: id++ }
    expect(await within(queue.run(last), 'run()')).toEqual(last)
    expect(queue.stats().pushed).toBe(invalid.length + 1)
  })
})

describe('a run() result larger than the completion ring', () => {
  // Defect: the worker threw "completion larger than the completion ring", died, and the
  // message was retried until dead-lettered as WORKER_DIED.
  it('rejects with RESULT_ENCODE_FAILED naming laneBytes; no worker dies; the lane goes on', async () => {
    const queue = makeQueue({
      handler: fixture('edge-big-result.mjs'),
      threads: 1,
      laneBytes: 4096,
    })
    const exits: unknown[] = []
    queue.on('worker-exit', (info) => exits.push(info))
    await queue.start()
    const err = await rejection(within(queue.run({ big: 100_000 }), 'run() of a big result'))
    expect(err.code, String(err)).toBe('RESULT_ENCODE_FAILED')
    expect(err.message).toContain('laneBytes')
    expect(await within(queue.run('small'), 'run() after it')).toBe('small')
    expect(exits).toEqual([])
    expect(queue.stats().lanes[0].restarts).toBe(0)
    const report = await within(queue.stop(), 'stop()')
    expect(report).toMatchObject({ pushed: 2, deadLettered: 0, unprocessed: [] })
  })
})
