import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createQueue } from '../../../dist/src/index.js'
import { redisSource } from '../../../dist/src/sources/redis/index.js'
import { brokerUp, uniqueName } from '../support/brokers.js'
import {
  addMessages,
  ConsumerProcess,
  fixture,
  groupState,
  PrivateRedis,
  pendingIds,
  readJournal,
  sleep,
  tempDir,
  waitFor,
} from './support.js'

/** Every n of [0, count) handled at least once; returns the n handled more than once. */
function coverage(count: number, ...journals: Map<number, number>[]): number[] {
  const duplicates: number[] = []
  for (let n = 0; n < count; n++) {
    const times = journals.reduce((sum, j) => sum + (j.get(n) ?? 0), 0)
    expect(times, `message ${n} handled`).toBeGreaterThanOrEqual(1)
    if (times > 1) duplicates.push(n)
  }
  return duplicates
}

const total = (journal: Map<number, number>) => [...journal.values()].reduce((a, b) => a + b, 0)

async function drained(redis: Redis, stream: string, group: string): Promise<boolean> {
  const state = await groupState(redis, stream, group)
  return state.pending === 0 && state.lag === 0
}

describe.runIf(await brokerUp('redis'))('redisSource() under faults', () => {
  let admin: Redis
  beforeAll(() => {
    admin = new Redis({ host: '127.0.0.1', port: 6379 })
  })
  afterAll(() => admin.disconnect())

  it('SIGKILL of one of two consumer processes: the other claims its entries; duplicates only of those', async () => {
    const stream = uniqueName('redis-sigkill')
    const { dir, remove } = tempDir('conveyor-redis-sigkill-')
    const count = 4000
    const maxInFlight = 16
    const processes: ConsumerProcess[] = []
    try {
      const ids = await addMessages(admin, stream, count)
      const nOf = new Map(ids.map((id, n) => [id, n]))
      const common = { port: 6379, stream, group: 'g', claimIdleMs: 1000, maxInFlight, costMs: 1 }
      const journals = { a: join(dir, 'a'), b: join(dir, 'b') }
      const a = new ConsumerProcess({ ...common, consumer: 'a', journal: journals.a })
      const b = new ConsumerProcess({ ...common, consumer: 'b', journal: journals.b })
      processes.push(a, b)
      await waitFor(() => a.out.includes('started') && b.out.includes('started'), 'both started')
      await waitFor(() => total(readJournal(journals.a)) >= 500, 'a to handle 500 messages')
      a.kill('SIGKILL')
      expect((await a.exited).signal).toBe('SIGKILL')
      // What a had fetched and not acked when it died: all b may duplicate.
      const pendingOnA = await pendingIds(admin, stream, 'g', 'a')
      await waitFor(() => drained(admin, stream, 'g'), 'b to drain the stream, a’s entries too')
      b.kill('SIGTERM')
      expect(await b.exited).toEqual({ code: 0, signal: null })

      const ja = readJournal(journals.a)
      const jb = readJournal(journals.b)
      const duplicates = coverage(count, ja, jb)
      const inFlightAtKill = new Set(pendingOnA.map((id) => nOf.get(id)))
      // b took over every entry a held.
      for (const n of inFlightAtKill)
        expect(jb.has(n as number), `a's ${n} claimed by b`).toBe(true)
      // Duplicates: only messages a held when it was killed (finished, not yet acked).
      for (const n of duplicates) expect(inFlightAtKill.has(n), `duplicate ${n}`).toBe(true)
      expect(duplicates.length).toBeLessThanOrEqual(pendingOnA.length)
      // Held = at most maxInFlight unsettled, plus acks of the last few ms not yet sent.
      expect(pendingOnA.length).toBeLessThanOrEqual(2 * maxInFlight)
      console.log(
        `SIGKILL: a handled ${total(ja)}, b ${total(jb)}; a held ${pendingOnA.length} at the kill; ${duplicates.length} duplicates`,
      )
    } finally {
      for (const p of processes) p.kill('SIGKILL')
      await Promise.all(processes.map((p) => p.exited))
      await admin.del(stream, `${stream}:dead`)
      remove()
    }
  })

  it('SIGTERM under load: graceful stop, nothing finished left pending, the rest handed back', async () => {
    const stream = uniqueName('redis-sigterm')
    const { dir, remove } = tempDir('conveyor-redis-sigterm-')
    const count = 3000
    const processes: ConsumerProcess[] = []
    try {
      const ids = await addMessages(admin, stream, count)
      const nOf = new Map(ids.map((id, n) => [id, n]))
      // Default claimIdleMs (30 s): what the first process did not finish comes back sooner
      // only because its close() made it idle.
      const common = {
        port: 6379,
        stream,
        group: 'g',
        claimIdleMs: 30_000,
        maxInFlight: 32,
        costMs: 1,
      }
      // Its default consumer name: close() must hand back what it did not finish.
      const first = new ConsumerProcess({ ...common, journal: join(dir, '1') })
      processes.push(first)
      await waitFor(() => first.out.includes('started'), 'the first consumer to start')
      await waitFor(() => total(readJournal(join(dir, '1'))) >= 500, '500 messages handled')
      first.kill('SIGTERM')
      expect(await first.exited).toEqual({ code: 0, signal: null })
      expect(first.out).toContain('"stopped":true')
      const j1 = readJournal(join(dir, '1'))
      // Everything the first process finished was acked before it exited.
      const pending = await pendingIds(admin, stream, 'g')
      for (const id of pending)
        expect(j1.has(nOf.get(id) as number), `finished ${id} pending`).toBe(false)
      expect(pending.length).toBeGreaterThan(0)

      const second = new ConsumerProcess({ ...common, consumer: 'second', journal: join(dir, '2') })
      processes.push(second)
      await waitFor(() => drained(admin, stream, 'g'), 'the second consumer to drain it', 25_000)
      second.kill('SIGTERM')
      expect(await second.exited).toEqual({ code: 0, signal: null })
      // Nothing lost, nothing done twice.
      expect(coverage(count, j1, readJournal(join(dir, '2')))).toEqual([])
    } finally {
      for (const p of processes) p.kill('SIGKILL')
      await Promise.all(processes.map((p) => p.exited))
      await admin.del(stream, `${stream}:dead`)
      remove()
    }
  })

  for (const fault of ['restart', 'connection cut'] as const) {
    it(`recovers from a ${fault === 'restart' ? 'broker restart' : 'cut connection'} mid-run: every message handled, nothing left pending`, async () => {
      const { dir, remove } = tempDir('conveyor-redis-restart-')
      const server = await PrivateRedis.start(dir)
      const redis = new Redis({ host: '127.0.0.1', port: server.port })
      redis.on('error', () => {})
      const stream = uniqueName('redis-fault')
      const journal = join(dir, 'journal')
      const count = 3000
      const queue = createQueue({
        handler: fixture('journal.mjs'),
        threads: 2,
        workerData: { journal, costMs: 1 },
        retry: { attempts: 1 },
      })
      const source = redisSource({
        redis: { host: '127.0.0.1', port: server.port },
        stream,
        group: 'g',
        maxInFlight: 16,
        claimIdleMs: 5000,
      })
      const events: string[] = []
      source.on('disconnect', () => events.push('disconnect'))
      source.on('reconnect', () => events.push('reconnect'))
      source.on('error', () => events.push('error'))
      const dead: string[] = []
      source.on('dead-letter', ({ id, error, deliveries }) =>
        dead.push(`${id} after ${deliveries}: ${error.message}`),
      )
      try {
        await addMessages(redis, stream, count)
        await queue.start()
        const consuming = queue.consume(source)
        for (const at of [600, 1400, 2200]) {
          await waitFor(() => total(readJournal(journal)) >= at, `${at} handled`)
          if (fault === 'restart') {
            await server.kill()
            await sleep(300)
            await server.start()
          } else {
            // A cut while no fetch is on its way reconnects unnoticed: cut until one fails.
            for (let cuts = 0; cuts < 100 && !events.includes('disconnect'); cuts++) {
              await redis.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
              await sleep(20)
            }
          }
          await waitFor(() => events.includes('reconnect'), 'a reconnect')
          events.splice(0)
          if (fault === 'restart') break
        }
        await waitFor(() => drained(redis, stream, 'g'), 'the stream drained')
        await queue.stop({ timeoutMs: 5000 })
        await source.close()
        await consuming
        // Nothing handled twice: the acks sent while the connection was down reached Redis
        // after it (a lost ack would bring its entry back after claimIdleMs), and entries read
        // in a reply lost with the connection were read again from this consumer's own pending.
        expect(dead).toEqual([])
        expect(coverage(count, readJournal(journal))).toEqual([])
        expect(await groupState(redis, stream, 'g')).toMatchObject({ pending: 0, lag: 0 })
      } finally {
        await queue.stop({ timeoutMs: 1000 }).catch(() => {})
        await source.close().catch(() => {})
        redis.disconnect()
        await server.kill()
        remove()
      }
    })
  }
})
