import { execFileSync } from 'node:child_process'
import { cpSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createQueue, type Queue } from '../../../dist/src/index.js'
import { type RedisSource, redisSource } from '../../../dist/src/sources/redis/index.js'
import {
  autoClaimReply,
  fieldValue,
  pendingOf,
  readClaimEntries,
  readGroupEntries,
} from '../../../dist/src/sources/redis/replies.js'
import { brokerUp, uniqueName } from '../support/brokers.js'
import {
  addMessages,
  fixture,
  groupState,
  readJournal,
  sleep,
  tempDir,
  waitFor,
} from './support.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))

describe('redisSource() options', () => {
  const refused = (options: unknown) => {
    try {
      redisSource(options as never)
    } catch (err) {
      return err as Error & { code?: string }
    }
    throw new Error('accepted')
  }

  it('refuses each mistake with INVALID_OPTION naming the option', () => {
    const base = { stream: 's', group: 'g', redis: {} }
    const cases: [unknown, RegExp][] = [
      [undefined, /options are required/],
      [{ group: 'g' }, /stream must be a non-empty string/],
      [{ stream: 's' }, /group must be a non-empty string/],
      [{ ...base, stream: '' }, /stream must be a non-empty string/],
      [{ ...base, consumer: 3 }, /consumer must be a non-empty string/],
      [{ ...base, createGroup: 'yes' }, /createGroup must be true, false, '0' or '\$'/],
      [{ ...base, blockMs: 0 }, /blockMs must be a whole number of milliseconds ≥ 1/],
      [{ ...base, blockMs: 1.5 }, /blockMs must be a whole number/],
      [{ ...base, claimIdleMs: 2 }, /claimIdleMs must be a whole number of milliseconds ≥ 3/],
      [{ ...base, deadLetterStream: 's' }, /deadLetterStream must differ from stream/],
      [{ ...base, field: '' }, /field must be a non-empty string/],
      [{ ...base, redis: 6379 }, /redis must be an ioredis client, a redis:\/\/ URL/],
      [{ ...base, redis: new Map() }, /redis must be an ioredis client/],
      [{ ...base, maxInFlight: 0 }, /maxInFlight must be an integer ≥ 1/],
      [{ ...base, stram: 'x' }, /unknown option 'stram'/],
    ]
    for (const [options, message] of cases) {
      const err = refused(options)
      expect(err.code, String(message)).toBe('INVALID_OPTION')
      expect(err.message).toMatch(/^redisSource\(\): /)
      expect(err.message).toMatch(message)
    }
  })

  it('takes the documented defaults', async () => {
    const source = redisSource({ stream: 's', group: 'g', redis: { lazyConnect: true } })
    expect(source.inFlight).toBe(0)
    await source.close()
  })
})

describe('Redis replies', () => {
  const b = (text: string) => Buffer.from(text)

  it('reads XREADGROUP as RESP2 arrays and as RESP3 maps, and the other replies', () => {
    const entries = [[b('1-0'), [b('data'), b('{"n":1}'), b('x'), b('y')]]]
    expect(readGroupEntries([[b('s'), entries]])).toEqual([{ id: '1-0', fields: entries[0][1] }])
    expect(readGroupEntries({ s: entries })).toEqual([{ id: '1-0', fields: entries[0][1] }])
    expect(readGroupEntries(null)).toEqual([])
    expect(readGroupEntries([[b('s'), [[b('2-0'), null]]]])).toEqual([{ id: '2-0', fields: null }])
    expect(autoClaimReply([b('0-0'), entries, []])).toEqual({
      cursor: '0-0',
      entries: [{ id: '1-0', fields: entries[0][1] }],
    })
    expect(readClaimEntries([...entries, null, [b('3-0'), null]])).toEqual([
      { id: '1-0', fields: entries[0][1] },
    ])
    expect(fieldValue(entries[0][1] as Buffer[], 'data')).toEqual(b('{"n":1}'))
    expect(fieldValue(entries[0][1] as Buffer[], 'y')).toBeUndefined()
    expect(fieldValue(['data', 'text'], 'data')).toEqual(b('text'))
    expect(pendingOf([['1-0', 'c', 10, 3]])).toEqual({ consumer: 'c', deliveries: 3 })
    expect(pendingOf([])).toBeUndefined()
  })
})

describe('loading ioredis', () => {
  const run = (code: string) =>
    execFileSync(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      encoding: 'utf8',
    }).trim()
  const loaded = `(await import('node:module')).createRequire(import.meta.url + '/x').cache`
  const check = `Object.keys(${loaded}).some((p) => p.includes('/node_modules/ioredis/'))`

  it('importing conveyor-lanes, or the redis entry alone, does not load it', () => {
    expect(run(`await import('conveyor-lanes'); console.log(${check})`)).toBe('false')
    expect(run(`await import('conveyor-lanes/sources/redis'); console.log(${check})`)).toBe('false')
    // The check can see it: a source that opens its own connections loads it.
    expect(
      run(
        `const { redisSource } = await import('conveyor-lanes/sources/redis'); const s = redisSource({ stream: 's', group: 'g', redis: { lazyConnect: true } }); console.log(${check}); await s.close()`,
      ),
    ).toBe('true')
  })

  it('a missing ioredis is an error saying what to install', () => {
    const { dir, remove } = tempDir('conveyor-no-ioredis-')
    try {
      // The built package without any node_modules next to it.
      cpSync(join(root, 'dist', 'src'), join(dir, 'src'), { recursive: true })
      writeFileSync(join(dir, 'package.json'), '{ "type": "module" }')
      const out = execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { redisSource } = await import('./src/sources/redis/index.js')
try { redisSource({ stream: 's', group: 'g' }) } catch (err) { console.log(err.code, err.message) }`,
        ],
        { cwd: dir, encoding: 'utf8' },
      )
      expect(out.trim()).toBe(
        "PEER_MISSING conveyor-lanes/sources/redis needs the 'ioredis' package to connect: npm install ioredis",
      )
    } finally {
      remove()
    }
  })
})

describe.runIf(await brokerUp('redis'))('redisSource() on the live Redis', () => {
  let admin: Redis
  const streams: string[] = []
  const queues: Queue[] = []
  const sources: RedisSource<unknown>[] = []

  beforeAll(() => {
    admin = new Redis({ host: '127.0.0.1', port: 6379 })
  })
  afterEach(async () => {
    await Promise.all(queues.splice(0).map((q) => q.stop({ timeoutMs: 1000 }).catch(() => {})))
    await Promise.all(sources.splice(0).map((s) => s.close().catch(() => {})))
    for (const s of streams.splice(0)) await admin.del(s, `${s}:dead`)
  })
  afterAll(() => admin.disconnect())

  function stream(prefix: string): string {
    const name = uniqueName(prefix)
    streams.push(name)
    return name
  }

  it('20 000 messages, some failing: each acked exactly once or dead-lettered, nothing left pending', async () => {
    const name = stream('redis-20k')
    const ids = await addMessages(admin, name, 20_000)
    const nOf = new Map(ids.map((id, n) => [id, n]))
    // The user's own client: acks go through it, so each XACK can be counted.
    const client = new Redis({ host: '127.0.0.1', port: 6379 })
    const acks = new Map<string, number>()
    const xack = client.xack.bind(client) as (...args: unknown[]) => Promise<number>
    ;(client as unknown as { xack: unknown }).xack = async (...args: unknown[]) => {
      const result = await xack(...args)
      for (const id of args.slice(2) as string[]) acks.set(id, (acks.get(id) ?? 0) + 1)
      return result
    }
    const queue = createQueue({
      handler: fixture('flaky.mjs'),
      threads: 2,
      retry: { attempts: 1 },
    })
    queues.push(queue)
    const source = redisSource<{ n: number }>({
      redis: client,
      stream: name,
      group: 'g',
      maxDeliveries: 3,
    })
    sources.push(source as RedisSource<unknown>)
    const dead = new Map<string, { deliveries: number; value: unknown }>()
    source.on('dead-letter', ({ id, deliveries, value }) => dead.set(id, { deliveries, value }))
    await queue.start()
    const consuming = queue.consume(source)
    await waitFor(() => acks.size + dead.size >= 20_000, 'every message acked or dead')
    await queue.stop({ timeoutMs: 5000 })
    await source.close()
    await consuming

    const poison = ids.filter((_, n) => n % 500 === 7)
    expect([...dead.keys()].sort()).toEqual([...poison].sort())
    for (const [id, letter] of dead) {
      expect(letter.deliveries, id).toBe(3)
      expect(letter.value).toEqual({ n: nOf.get(id) })
      expect(acks.has(id), `dead ${id} also acked`).toBe(false)
    }
    expect(acks.size).toBe(20_000 - poison.length)
    for (const [id, times] of acks) {
      expect(nOf.has(id), `acked ${id}`).toBe(true)
      expect(times, `acks of ${id}`).toBe(1)
    }
    // The transient failures were redelivered and finished.
    for (let n = 3; n < 20_000; n += 97) if (n % 500 !== 7) expect(acks.get(ids[n])).toBe(1)
    expect(await groupState(admin, name, 'g')).toMatchObject({ pending: 0, lag: 0 })
    // Dead letters: the payload, where it came from, why, how often it was delivered.
    const letters = (await admin.xrange(`${name}:dead`, '-', '+')) as [string, string[]][]
    expect(letters).toHaveLength(poison.length)
    const fields = Object.fromEntries(
      letters[0][1].flatMap((_, i, a) => (i % 2 === 0 ? [[a[i], a[i + 1]]] : [])),
    )
    expect(fields).toMatchObject({
      data: JSON.stringify({ n: 7 }),
      id: ids[7],
      stream: name,
      group: 'g',
      deliveries: '3',
      error: 'poison 7',
    })
    // The user's client stays open; the consumer (named after this process) left the group.
    expect(client.status).toBe('ready')
    expect(await groupState(admin, name, 'g')).toMatchObject({ consumers: 0 })
    client.disconnect()
  })

  it('dead-letters an entry without the payload field, or one that does not decode', async () => {
    const name = stream('redis-undecodable')
    await admin.xadd(name, '*', 'other', 'x')
    await admin.xadd(name, '*', 'data', 'not json')
    await admin.xadd(name, '*', 'data', JSON.stringify({ n: 1 }))
    const queue = createQueue({ handler: fixture('echo.mjs'), threads: 1 })
    queues.push(queue)
    const source = redisSource({ stream: name, group: 'g', redis: 'redis://127.0.0.1:6379' })
    sources.push(source)
    const dead: string[] = []
    source.on('dead-letter', ({ error }) =>
      dead.push(`${(error as { code?: string }).code}: ${error.message}`),
    )
    await queue.start()
    void queue.consume(source)
    await waitFor(async () => (await admin.xlen(`${name}:dead`)) === 2, 'two dead letters')
    await waitFor(async () => (await groupState(admin, name, 'g')).pending === 0, 'no pending')
    expect(dead).toHaveLength(2)
    expect(dead[0]).toMatch(/^DECODE_FAILED: .*the entry has no field 'data'/)
    expect(dead[1]).toMatch(/^DECODE_FAILED: /)
  })

  it('a handler slower than claimIdleMs is not claimed by another consumer while it runs', async () => {
    const name = stream('redis-slow')
    const { dir, remove } = tempDir('conveyor-redis-slow-')
    const journal = join(dir, 'journal')
    try {
      await addMessages(admin, name, 6)
      const claimIdleMs = 400
      const queue = createQueue({
        handler: fixture('journal.mjs'),
        threads: 2,
        workerData: { journal, sleepMs: 3 * claimIdleMs },
      })
      queues.push(queue)
      const source = redisSource({ stream: name, group: 'g', claimIdleMs, redis: {} })
      sources.push(source)
      await queue.start()
      void queue.consume(source)
      await waitFor(
        () =>
          groupState(admin, name, 'g').then(
            () => true,
            () => false,
          ),
        'the group to be created',
      )
      // Another consumer of the group, claiming whatever has been idle for claimIdleMs.
      const claimed: string[] = []
      let sweeping = true
      const thief = (async () => {
        while (sweeping) {
          const [, entries] = (await admin.xautoclaim(
            name,
            'g',
            'thief',
            claimIdleMs,
            '0-0',
            'COUNT',
            100,
          )) as [string, [string, string[]][]]
          for (const [id] of entries) claimed.push(id)
          await sleep(25)
        }
      })()
      await waitFor(() => readJournal(journal).size === 6, 'the six slow messages', 60_000)
      await waitFor(async () => (await groupState(admin, name, 'g')).pending === 0, 'no pending')
      sweeping = false
      await thief
      expect(claimed).toEqual([])
      expect([...readJournal(journal).values()]).toEqual([1, 1, 1, 1, 1, 1])
    } finally {
      remove()
    }
  })

  it('creates the group again when it is gone (a restart without persistence)', async () => {
    const name = stream('redis-nogroup')
    await addMessages(admin, name, 10)
    const { dir, remove } = tempDir('conveyor-redis-nogroup-')
    const journal = join(dir, 'journal')
    try {
      const queue = createQueue({
        handler: fixture('journal.mjs'),
        threads: 1,
        workerData: { journal },
      })
      queues.push(queue)
      const source = redisSource({ stream: name, group: 'g', redis: {}, blockMs: 100 })
      sources.push(source)
      source.on('error', () => {})
      await queue.start()
      void queue.consume(source)
      await waitFor(() => readJournal(journal).size === 10, 'the first ten')
      await waitFor(async () => (await groupState(admin, name, 'g')).pending === 0, 'acked')
      await admin.del(name)
      await addMessages(admin, name, 10, 10)
      await waitFor(() => readJournal(journal).size === 20, 'the ten added after')
      await waitFor(async () => (await groupState(admin, name, 'g')).pending === 0, 'acked')
      expect([...readJournal(journal).values()].every((times) => times === 1)).toBe(true)
    } finally {
      remove()
    }
  })

  it('re-reads its own pending entries first after a restart under the same consumer name', async () => {
    const name = stream('redis-own-pending')
    await addMessages(admin, name, 10)
    await admin.xgroup('CREATE', name, 'g', '0')
    // A previous life of consumer 'c1' read four entries and died before acking them.
    await admin.xreadgroup('GROUP', 'g', 'c1', 'COUNT', 4, 'STREAMS', name, '>')
    const { dir, remove } = tempDir('conveyor-redis-own-')
    const journal = join(dir, 'journal')
    try {
      const queue = createQueue({
        handler: fixture('journal.mjs'),
        threads: 1,
        workerData: { journal },
      })
      queues.push(queue)
      const source = redisSource({ stream: name, group: 'g', consumer: 'c1', redis: {} })
      sources.push(source)
      const letters: number[] = []
      source.on('dead-letter', ({ deliveries }) => letters.push(deliveries))
      await queue.start()
      void queue.consume(source)
      await waitFor(() => readJournal(journal).size === 10, 'all ten')
      expect(letters).toEqual([])
      await waitFor(async () => (await groupState(admin, name, 'g')).pending === 0, 'no pending')
      // In order: the pending four first (one thread, so the journal keeps the order).
      const order = readFileSync(journal, 'utf8').trim().split('\n')
      expect(order.map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      // Close leaves a named consumer in the group (only default names are removed).
      await queue.stop()
      await source.close()
      expect(await groupState(admin, name, 'g')).toMatchObject({ consumers: 1 })
    } finally {
      remove()
    }
  })
})
