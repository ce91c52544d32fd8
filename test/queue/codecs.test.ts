import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { CodecSpec } from '../../dist/src/index.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

async function echoQueue(codec: CodecSpec) {
  const queue = makeQueue({ handler: fixture('echo.mjs'), threads: 2, codec, laneBytes: 65536 })
  await queue.start()
  return queue
}

const bytesOf = (v: unknown) => [...(v as Uint8Array)]

describe('codecs round-trip through run()', () => {
  it("'string'", async () => {
    const queue = await echoQueue('string')
    for (const s of ['plain', '', 'ü€😀 mixed \u0000 nul', 'x'.repeat(20_000)]) {
      expect(await queue.run(s)).toBe(s)
    }
    expect(await rejection(queue.push({ not: 'a string' }))).toMatchObject({
      code: 'ENCODE_FAILED',
    })
  })

  it("'bytes'", async () => {
    const queue = await echoQueue('bytes')
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect(bytesOf(await queue.run(all))).toEqual(bytesOf(all))
    expect(bytesOf(await queue.run(new Uint8Array(0)))).toEqual([])
    const buf = Buffer.from('a Buffer works too')
    expect(Buffer.from(await queue.run<Uint8Array>(buf)).toString()).toBe('a Buffer works too')
    // A view into a larger buffer sends only its own bytes.
    const view = new Uint8Array(all.buffer, 10, 5)
    expect(bytesOf(await queue.run(view))).toEqual([10, 11, 12, 13, 14])
    expect(await rejection(queue.push('not bytes'))).toMatchObject({ code: 'ENCODE_FAILED' })
  })

  it("'v8'", async () => {
    const queue = await echoQueue('v8')
    const value = {
      map: new Map<unknown, unknown>([
        ['k', 1],
        [2, { nested: [1, 2] }],
      ]),
      set: new Set([1, 'two']),
      date: new Date(1_000_000),
      big: -(2n ** 80n),
      typed: new Float64Array([1.5, -0, Number.POSITIVE_INFINITY]),
      regexp: /ab+c/gi,
      undef: undefined,
      sparse: Object.assign(new Array(3), { 0: 1, 2: 3 }), // a hole at 1
      deep: { a: { b: { c: { d: ['ü€😀'] } } } },
    }
    expect(await queue.run(value)).toEqual(value)
    expect(await queue.run(undefined)).toBeUndefined()
  })

  it("'msgpack'", async () => {
    const queue = await echoQueue('msgpack')
    const value = {
      int: 42,
      negative: -123456789,
      float: 3.25,
      big: 2 ** 40 + 1,
      text: 'ü€😀',
      list: [1, 'a', null, true, false, [{ x: 1 }]],
      nested: { a: { b: { c: [] } } },
      date: new Date(1_700_000_000_000),
    }
    expect(await queue.run(value)).toEqual(value)
    const binary = await queue.run<{ bin: Uint8Array }>({ bin: new Uint8Array([1, 2, 250]) })
    expect(bytesOf(binary.bin)).toEqual([1, 2, 250])
  })

  it.each([
    ['a path, bytes on the wire', fixture('codec-binary.mjs')],
    ['a URL, bytes on the wire', pathToFileURL(fixture('codec-binary.mjs'))],
    ['a path, a string on the wire', fixture('codec-base64.mjs')],
  ])('a custom codec module (%s)', async (_name, module) => {
    const queue = await echoQueue({ module })
    const value = { id: 7, text: 'ü€😀', list: [1, { deep: [true, null] }] }
    expect(await queue.run(value)).toEqual(value)
    let acks = 0
    for (let i = 0; i < 500; i++) await queue.push({ i, value }, { ack: () => acks++ })
    await waitFor(() => acks === 500, 'the pushes to be acked')
  })

  it("'bytes': failed and dead-lettered messages are private copies, intact after the ring moved on", async () => {
    const queue = makeQueue({
      handler: fixture('bytes-fail.mjs'),
      threads: 1,
      codec: 'bytes',
      laneBytes: 4096,
      retry: { attempts: 2, backoffMs: 0 },
    })
    const failed: Uint8Array[] = []
    const dead: Uint8Array[] = []
    queue.on('failed', (_e, message) => failed.push(message as Uint8Array))
    queue.on('dead-letter', ({ message }) => dead.push(message as Uint8Array))
    await queue.start()
    const message = (i: number) =>
      Uint8Array.from({ length: 100 }, (_, j) =>
        j === 0 ? (i % 10 === 0 ? 0xff : 0) : j === 1 ? i : (i * j) & 0xff,
      )
    let settled = 0
    for (let i = 0; i < 250; i++) {
      await queue.push(message(i), { ack: () => settled++, nack: () => settled++ })
    }
    await waitFor(() => settled === 250, 'every message to settle')
    // The ring (4 KiB) has wrapped many times since: the copies must not have changed.
    expect(dead.map((m) => m[1])).toEqual(Array.from({ length: 25 }, (_, k) => k * 10))
    for (const m of dead) expect(bytesOf(m)).toEqual(bytesOf(message(m[1])))
    expect(failed).toHaveLength(50)
    for (const m of failed) expect(bytesOf(m)).toEqual(bytesOf(message(m[1])))
  })
})

describe('a message the codec cannot decode', () => {
  it('is dead-lettered at once with DECODE_FAILED and its raw bytes; the lane goes on', async () => {
    const queue = makeQueue({
      handler: fixture('echo.mjs'),
      threads: 1,
      codec: { module: fixture('codec-picky.mjs') },
      retry: { attempts: 3, backoffMs: 1 },
    })
    const dead: { message: unknown; error: Error & { code?: string } }[] = []
    let failed = 0
    queue.on('dead-letter', (letter) => dead.push(letter))
    queue.on('failed', () => failed++)
    await queue.start()
    const acked: string[] = []
    for (const text of ['a', '!b', 'c']) await queue.push(text, { ack: () => acked.push(text) })
    expect(await queue.run('d')).toBe('d')
    const report = await queue.stop()
    expect(acked).toEqual(['a', 'c'])
    expect(dead).toHaveLength(1)
    expect(dead[0].error.code).toBe('DECODE_FAILED')
    expect(dead[0].error.message).toContain('refusing !b')
    // The main thread cannot decode it either: the raw bytes come back.
    expect(Buffer.from(dead[0].message as Uint8Array).toString()).toBe('!b')
    expect(failed).toBe(0) // the handler never ran, so it never failed
    expect(report).toMatchObject({ pushed: 4, completed: 3, deadLettered: 1 })
  })
})
