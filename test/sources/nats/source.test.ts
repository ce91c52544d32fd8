import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { AckPolicy } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import { createQueue, type Queue } from '../../../dist/src/index.js'
import type { Envelope } from '../../../dist/src/queue/consume.js'
import { natsSource } from '../../../dist/src/sources/nats/index.js'
import { brokerUp } from '../support/brokers.js'
import {
  counts,
  fixture,
  SHARED_SERVER,
  type Stage,
  sleep,
  stage,
  tempDir,
  waitFor,
} from './support.js'

/** A connection whose published acks, naks and terms are counted per stream sequence. */
async function countingConnection(): Promise<{
  nc: NatsConnection
  /** Per payload (+ACK, -NAK, +TERM, +WPI): how often each stream sequence got it. */
  settled: Map<string, Map<number, number>>
  /** The pull requests sent, as JSON. */
  pulls: string[]
  /** Every -NAK payload. */
  naks: string[]
}> {
  const nc = await connect({ servers: SHARED_SERVER, maxReconnectAttempts: -1 })
  const settled = new Map<string, Map<number, number>>()
  const pulls: string[] = []
  const naks: string[] = []
  const publish = nc.publish.bind(nc)
  nc.publish = (subject, payload, options) => {
    if (subject.startsWith('$JS.API.CONSUMER.MSG.NEXT.')) pulls.push(String(payload))
    if (typeof payload === 'string' && payload.startsWith('-NAK')) naks.push(payload)
    if (subject.startsWith('$JS.ACK.') && typeof payload === 'string') {
      const tokens = subject.split('.')
      const seq = Number(tokens[tokens.length === 9 ? 5 : 7])
      const kind = payload.split(' ')[0]
      let perSeq = settled.get(kind)
      if (!perSeq) settled.set(kind, (perSeq = new Map()))
      perSeq.set(seq, (perSeq.get(seq) ?? 0) + 1)
    }
    return publish(subject, payload, options)
  }
  return { nc, settled, pulls, naks }
}

/** Pulls envelopes from a source by hand (no queue): `take(n)` resolves with the next n. */
function puller<T>(source: AsyncIterable<Envelope<T>>) {
  const iterator = source[Symbol.asyncIterator]()
  const got: Envelope<T>[] = []
  let pending: Promise<unknown> | undefined
  const pump = async (n: number) => {
    while (got.length < n) {
      const next = await iterator.next()
      if (next.done) return
      got.push(next.value)
    }
  }
  return {
    got,
    async take(n: number, timeoutMs = 20_000) {
      pending = pump(got.length + n)
      await Promise.race([
        pending,
        sleep(timeoutMs).then(() => {
          throw new Error(`took ${got.length}, wanted ${n} more`)
        }),
      ])
    },
    /** Starts pulling `n` more in the background (it may never finish). */
    pull(n: number) {
      pending = pump(got.length + n)
    },
  }
}

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function track<T extends { drop(): Promise<void> }>(thing: T): T {
  cleanups.push(() => thing.drop())
  return thing
}

function queueFor(journal: string | undefined, spinUs = 0): Queue {
  const queue = createQueue({
    handler: fixture('handler.mjs'),
    threads: 2,
    retry: { attempts: 1 },
    workerData: { journal, spinUs },
  })
  cleanups.push(() => queue.stop({ timeoutMs: 2000 }))
  return queue
}

describe.runIf(await brokerUp('nats'))('natsSource against the live server', () => {
  it('20 000 messages, some failing: each acked exactly once, or dead-lettered once; nothing left pending', async () => {
    const s: Stage = track(await stage('nats-20k'))
    const N = 20_000
    const fails = (id: number) => (id % 100 === 7 ? 'always' : id % 100 === 13 ? 'once' : undefined)
    await s.publish(N, (id) => (fails(id) ? { fail: fails(id) } : {}))
    // One message that is not JSON: dead-lettered at once (DECODE_FAILED), never handled.
    await s.js.publish(s.subject, 'not json')
    const { nc, settled } = await countingConnection()
    cleanups.push(() => nc.close())
    const { dir, remove } = tempDir('nats-20k-')
    cleanups.push(remove)
    const journal = join(dir, 'journal')

    const queue = queueFor(journal)
    await queue.start()
    const source = natsSource({
      connection: nc,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      maxInFlight: 32,
      maxDeliveries: 3,
    })
    const errors: Error[] = []
    source.on('error', (e) => errors.push(e))
    const deadIds: string[] = []
    source.on('dead-letter', ({ id }) => deadIds.push(id))
    const consuming = queue.consume(source)

    const alwaysFailing = new Set<number>()
    for (let id = 0; id < N; id++) if (fails(id) === 'always') alwaysFailing.add(id)
    await waitFor(
      async () => {
        const info = await s.info()
        return (
          info.num_pending === 0 &&
          info.num_ack_pending === 0 &&
          deadIds.length === alwaysFailing.size + 1
        )
      },
      'every message acked or dead-lettered',
      120_000,
    )
    await queue.stop({ timeoutMs: 5000 })
    await source.close()
    await consuming

    const acks = settled.get('+ACK') ?? new Map()
    const terms = settled.get('+TERM') ?? new Map()
    const handled = counts(journal, 'handled')
    for (let id = 0; id < N; id++) {
      const seq = id + 1
      if (alwaysFailing.has(id)) {
        expect(acks.get(seq), `message ${id} is dead, never acked`).toBeUndefined()
        expect(terms.get(seq), `message ${id} terminated once`).toBe(1)
      } else {
        expect(acks.get(seq), `message ${id} acked once`).toBe(1)
        expect(terms.get(seq)).toBeUndefined()
        expect(handled.get(id), `message ${id} handled once`).toBe(1)
      }
    }
    expect(terms.get(N + 1), 'the undecodable message, terminated').toBe(1)
    // Exactly the messages acked or terminated, nothing else.
    expect(acks.size + terms.size).toBe(N + 1)

    const letters = await s.deadLetters()
    const ids = letters.filter((l) => l.headers['Conveyor-Error-Code'] !== 'DECODE_FAILED')
    expect(ids.map((l) => (l.value as { id: number }).id).sort((a, b) => a - b)).toEqual(
      [...alwaysFailing].sort((a, b) => a - b),
    )
    for (const letter of ids) {
      const { id } = letter.value as { id: number }
      expect(letter.headers).toMatchObject({
        'Conveyor-Stream': s.stream,
        'Conveyor-Subject': s.subject,
        'Conveyor-Sequence': String(id + 1),
        'Conveyor-Deliveries': '3',
        'Conveyor-Error': `message ${id} always fails`,
      })
    }
    const undecodable = letters.filter((l) => l.headers['Conveyor-Error-Code'] === 'DECODE_FAILED')
    expect(undecodable).toHaveLength(1)
    expect(undecodable[0].headers['Conveyor-Sequence']).toBe(String(N + 1))
    expect(errors).toEqual([])
  })

  it('pulls on credit: JetStream has delivered exactly maxInFlight unsettled messages, never more', async () => {
    const s = track(await stage('nats-credit'))
    await s.publish(3)
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      maxInFlight: 7,
    })
    cleanups.push(() => source.close())
    const p = puller(source)
    // A pull for 7 brings 3: it stays open for 4 more, which count against the next fetch.
    await p.take(3)
    p.pull(5)
    await sleep(300)
    await s.publish(20)
    await waitFor(() => p.got.length === 7, 'the source to fill its credit')
    await sleep(1000)
    // The source waits for room; the server must not have handed it anything more.
    expect(p.got).toHaveLength(7)
    expect((await s.info()).num_ack_pending).toBe(7)
    for (const envelope of p.got.slice(0, 3)) envelope.ack?.()
    await waitFor(() => p.got.length === 8, 'one more')
    await sleep(1000)
    const info = await s.info()
    expect(p.got).toHaveLength(8)
    expect(info.num_ack_pending).toBe(7)
    expect(info.delivered.consumer_seq).toBe(10)
    expect(p.got.map((e) => (e.value as { id: number }).id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('a handler slower than ack_wait keeps its message: no other consumer gets it while it runs', async () => {
    const s = track(await stage('nats-lease'))
    const { dir, remove } = tempDir('nats-lease-')
    cleanups.push(remove)
    const journal = join(dir, 'journal')
    // ack_wait 1 s; the handler spins 4 s; the source extends every 333 ms.
    await s.publish(1, () => ({ spinMs: 4000 }))
    const queue = queueFor(journal)
    await queue.start()
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      ackWaitMs: 1000,
      maxInFlight: 1,
    })
    cleanups.push(() => source.close())
    const consuming = queue.consume(source)
    await waitFor(async () => (await s.info()).num_ack_pending === 1, 'the message delivered')
    // A competitor on the same durable consumer asks for a message every 100 ms meanwhile.
    const stolen: string[] = []
    while (counts(journal, 'handled').size === 0) {
      const reply = await s.pullOne()
      if (reply) {
        stolen.push(reply.reply)
        reply.respond('-NAK')
      }
      await sleep(100)
    }
    await waitFor(async () => (await s.info()).num_ack_pending === 0, 'the message acked')
    expect(stolen).toEqual([])
    const info = await s.info()
    expect(info.delivered.consumer_seq).toBe(1)
    expect(info.num_redelivered).toBe(0)
    expect(counts(journal, 'handled').get(0)).toBe(1)
    await queue.stop({ timeoutMs: 2000 })
    await source.close()
    await consuming
  })

  it('close() acks what finished and gives the rest back at once, not after ack_wait', async () => {
    const s = track(await stage('nats-close'))
    await s.publish(20)
    const { nc, settled } = await countingConnection()
    cleanups.push(() => nc.close())
    const options = {
      connection: nc,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      maxInFlight: 8,
      ackWaitMs: 60_000,
    }
    const first = natsSource(options)
    const p = puller(first)
    await p.take(8)
    for (const envelope of p.got.slice(0, 3)) envelope.ack?.()
    await first.close()
    expect([...(settled.get('+ACK')?.keys() ?? [])].sort((a, b) => a - b)).toEqual([1, 2, 3])
    expect([...(settled.get('-NAK')?.keys() ?? [])].sort((a, b) => a - b)).toEqual([4, 5, 6, 7, 8])
    // The connection was the caller's: still open.
    expect(nc.isClosed()).toBe(false)

    const second = natsSource({ ...options, maxInFlight: 5 })
    cleanups.push(() => second.close())
    const q = puller(second)
    await q.take(5, 10_000) // long before the 60 s ack_wait
    expect(q.got.map((e) => (e.value as { id: number }).id).sort((a, b) => a - b)).toEqual([
      3, 4, 5, 6, 7,
    ])
  })

  it('a message the queue gave up on comes back after retryDelayMs (-NAK with a delay), then is dead-lettered', async () => {
    const s = track(await stage('nats-retry'))
    await s.publish(1, () => ({ fail: 'always' }))
    const { nc, naks } = await countingConnection()
    cleanups.push(() => nc.close())
    const queue = queueFor(undefined)
    await queue.start()
    const source = natsSource({
      connection: nc,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      maxDeliveries: 2,
      retryDelayMs: 1500,
    })
    cleanups.push(() => source.close())
    const dead = new Promise<{ deliveries: number }>((resolve) =>
      source.once('dead-letter', resolve),
    )
    const consuming = queue.consume(source)
    expect((await dead).deliveries).toBe(2)
    expect(naks).toEqual(['-NAK {"delay":1500000000}'])
    const letters = await s.deadLetters()
    expect(letters.map((l) => l.headers['Conveyor-Error'])).toEqual(['message 0 always fails'])
    await queue.stop({ timeoutMs: 2000 })
    await source.close()
    await consuming
  })

  it('idle: pull requests expire (expiresMs) and are sent again; a message published later is taken', async () => {
    const s = track(await stage('nats-idle'))
    const { nc, pulls } = await countingConnection()
    cleanups.push(() => nc.close())
    const source = natsSource({
      connection: nc,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      maxInFlight: 4,
      expiresMs: 1000,
    })
    cleanups.push(() => source.close())
    const p = puller(source)
    p.pull(1)
    await waitFor(() => pulls.length >= 3, 'two pull requests expired and sent again')
    expect(pulls.every((pull) => JSON.parse(pull).batch === 4)).toBe(true)
    expect(pulls.every((pull) => JSON.parse(pull).expires === 1_000_000_000)).toBe(true)
    await s.publish(1)
    await waitFor(() => p.got.length === 1, 'the message')
    expect(p.got[0].value).toEqual({ id: 0 })
  })

  it('dead-letters a message delivered more than maxDeliveries times without running it', async () => {
    const s = track(await stage('nats-limit'))
    await s.publish(1)
    const { dir, remove } = tempDir('nats-limit-')
    cleanups.push(remove)
    const journal = join(dir, 'journal')
    // Consumers that died on it: delivered three times, never settled.
    await s.jsm.consumers.add(s.stream, {
      durable_name: s.consumer,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 1_000_000_000,
      max_deliver: -1,
    })
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await s.pullOne()) !== undefined, `delivery ${i + 1}`)
    }
    const queue = queueFor(journal)
    await queue.start()
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      ackWaitMs: 1000,
      maxDeliveries: 2,
    })
    cleanups.push(() => source.close())
    const dead = new Promise<{ error: Error; deliveries: number }>((resolve) =>
      source.once('dead-letter', resolve),
    )
    const consuming = queue.consume(source)
    const letter = await dead
    expect(letter.deliveries).toBe(4)
    expect(letter.error).toMatchObject({ code: 'DELIVERY_LIMIT' })
    await waitFor(async () => (await s.info()).num_ack_pending === 0, 'the message terminated')
    const letters = await s.deadLetters()
    expect(letters).toHaveLength(1)
    expect(letters[0].headers['Conveyor-Error-Code']).toBe('DELIVERY_LIMIT')
    expect(letters[0].headers['Conveyor-Deliveries']).toBe('4')
    expect(counts(journal, 'handled').size).toBe(0)
    await queue.stop({ timeoutMs: 2000 })
    await source.close()
    await consuming
    rmSync(journal, { force: true })
  })
})
