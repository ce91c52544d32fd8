import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ConsumeMessage } from 'amqplib'
import { describe, expect, it } from 'vitest'
import { deliveriesOf, uncounted } from '../../../dist/src/sources/amqp/adapter.js'
import { amqpSource } from '../../../dist/src/sources/amqp/index.js'
import { planAcks } from '../../../dist/src/sources/amqp/session.js'

/* No broker needed: option checks, the ack planner, delivery counting, how amqplib loads. */

const dist = (path: string) =>
  JSON.stringify(fileURLToPath(new URL(`../../../dist/src/${path}`, import.meta.url)))

function thrown(f: () => unknown): { code?: string; message: string } {
  try {
    f()
  } catch (err) {
    return err as { code?: string; message: string }
  }
  throw new Error('did not throw')
}

describe('amqpSource() options', () => {
  const url = 'amqp://127.0.0.1'
  const fakeConnection = { createChannel() {}, on() {} }
  it.each([
    [undefined, /options are required/],
    [{ url }, /queue must be a non-empty string/],
    [{ url, queue: '' }, /queue must be a non-empty string/],
    [{ url, queue: 'q'.repeat(256) }, /at most 255 bytes/],
    [{ queue: 'q' }, /give url .* or connection/],
    [{ url, connection: fakeConnection, queue: 'q' }, /url or connection, not both/],
    [{ url: 42, queue: 'q' }, /url must be an AMQP URL/],
    [{ connection: {}, queue: 'q' }, /connection must be an amqplib connection/],
    [{ connection: fakeConnection, queue: 'q', socketOptions: {} }, /socketOptions go with url/],
    [{ url, queue: 'q', socketOptions: 'x' }, /socketOptions must be an object/],
    [{ url, queue: 'q', assertQueue: 'yes' }, /assertQueue must be true or false/],
    [{ url, queue: 'q', queueType: 'stream' }, /queueType must be 'quorum' or 'classic'/],
    [{ url, queue: 'q', queueArguments: [] }, /queueArguments must be an object/],
    [{ url, queue: 'q', deadLetterExchange: '' }, /deadLetterExchange must be a non-empty/],
    [{ url, queue: 'q', deadLetterQueue: 3 }, /deadLetterQueue must be a non-empty/],
    [{ url, queue: 'q', deadLetterRoutingKey: null }, /deadLetterRoutingKey must be a string/],
    [{ url, queue: 'q', prefetch: 10 }, /unknown option 'prefetch'/],
    [{ url, queue: 'q', maxInFlight: 0 }, /maxInFlight must be an integer ≥ 1/],
    [{ url, queue: 'q', maxDeliveries: 1.5 }, /maxDeliveries must be an integer ≥ 1/],
    [{ url, queue: 'q', decode: 'json' }, /decode must be a function/],
    [{ url, queue: 'q', reconnect: { backoffMs: 10, maxBackoffMs: 5 } }, /maxBackoffMs .* below/],
  ])('%j is refused: INVALID_OPTION', (options, message) => {
    const error = thrown(() => amqpSource(options as never))
    expect(error.code).toBe('INVALID_OPTION')
    expect(error.message).toMatch(/^amqpSource\(\): /)
    expect(error.message).toMatch(message)
  })

  it('takes good options without connecting', async () => {
    const source = amqpSource({
      url,
      queue: 'orders',
      queueType: 'classic',
      deadLetterQueue: false,
      deadLetterRoutingKey: '',
      queueArguments: { 'x-max-length': 10 },
      maxInFlight: 8,
    })
    expect(source.inFlight).toBe(0)
    await source.close()
  })
})

describe('planAcks: one multiple=true ack only below the lowest unfinished tag', () => {
  it.each([
    // outstanding, batch → upTo, singles
    [[1, 2, 3, 4], [1, 2, 3, 4], 4, []],
    [[1, 2, 3, 4], [1, 2, 4], 2, [4]],
    [[1, 2, 3, 4], [2, 3, 4], undefined, [2, 3, 4]],
    [[1, 2, 3, 4], [1, 3], undefined, [1, 3]],
    [[5, 9, 12], [12, 5], undefined, [12, 5]],
    [[5, 9, 12], [12, 9, 5], 12, []],
    [[7], [7], undefined, [7]],
    [[3, 4, 10, 11], [3, 4, 11], 4, [11]],
  ])('outstanding %j, acking %j', (outstanding, batch, upTo, singles) => {
    expect(planAcks(new Set(outstanding), batch)).toEqual({ upTo, singles })
  })
})

describe('deliveriesOf / uncounted', () => {
  const message = (headers: Record<string, unknown> | undefined, redelivered = false) =>
    ({ fields: { redelivered }, properties: { headers } }) as unknown as ConsumeMessage
  it('counts a quorum queue delivery from x-acquired-count (4.x) or x-delivery-count (3.x)', () => {
    expect(deliveriesOf(message(undefined))).toBe(1)
    expect(deliveriesOf(message({ 'x-delivery-count': 2 }, true))).toBe(3)
    expect(deliveriesOf(message({ 'x-acquired-count': 4, 'x-delivery-count': 1 }, true))).toBe(5)
    expect(uncounted(message({ 'x-delivery-count': 2 }, true))).toBe(false)
    expect(uncounted(message({ 'x-acquired-count': 1 }, true))).toBe(false)
  })
  it("counts a classic queue's from the source's own header; an uncounted redelivery is recounted", () => {
    expect(deliveriesOf(message({ 'x-conveyor-deliveries': 2 }))).toBe(3)
    expect(uncounted(message({ 'x-conveyor-deliveries': 2 }))).toBe(false)
    expect(uncounted(message({ 'x-conveyor-deliveries': 2 }, true))).toBe(true)
    expect(uncounted(message(undefined, true))).toBe(true)
    expect(uncounted(message(undefined, false))).toBe(false)
  })
})

describe('loading amqplib', () => {
  it('importing conveyor-lanes, or conveyor-lanes/sources, does not load amqplib', () => {
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module'
         const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((p) => /[\\\\/]amqplib[\\\\/]/.test(p))
         await import(${dist('index.js')})
         await import(${dist('sources/index.js')})
         const main = loaded()
         const { amqpSource } = await import(${dist('sources/amqp/index.js')})
         amqpSource({ url: 'amqp://127.0.0.1', queue: 'q' })
         console.log(JSON.stringify({ main, entry: loaded() }))`,
      ],
      { encoding: 'utf8' },
    )
    expect(probe.status, probe.stderr).toBe(0)
    // The amqp entry loads it on the first connect, not before.
    expect(JSON.parse(probe.stdout)).toEqual({ main: false, entry: false })
  })

  it('without amqplib installed, amqpSource({ url }) says what to install', () => {
    const probe = spawnSync(
      process.execPath,
      [
        '--require',
        fileURLToPath(new URL('./fixtures/hide-amqplib.cjs', import.meta.url)),
        '--input-type=module',
        '-e',
        `const { amqpSource } = await import(${dist('sources/amqp/index.js')})
         try { amqpSource({ url: 'amqp://127.0.0.1', queue: 'q' }); console.log('no error') }
         catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })) }`,
      ],
      { encoding: 'utf8' },
    )
    expect(probe.stderr).toBe('')
    expect(JSON.parse(probe.stdout)).toEqual({
      code: 'PEER_MISSING',
      message:
        "conveyor-lanes/sources/amqp needs the 'amqplib' package, an optional peer dependency: npm install amqplib",
    })
  })
})
