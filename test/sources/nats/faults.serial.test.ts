import { join } from 'node:path'
import { AckPolicy } from '@nats-io/jetstream'
import { afterEach, describe, expect, it } from 'vitest'
import { createQueue } from '../../../dist/src/index.js'
import { natsSource } from '../../../dist/src/sources/nats/index.js'
import { brokerUp } from '../support/brokers.js'
import {
  type ConsumerChild,
  counts,
  fixture,
  freePort,
  PrivateServer,
  readJournal,
  SHARED_SERVER,
  type Stage,
  stage,
  startConsumer,
  stopChild,
  tempDir,
  waitFor,
} from './support.js'

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A stage with the durable consumer and the dead-letter stream made up front. */
async function prepared(prefix: string, ackWaitMs: number, servers = SHARED_SERVER) {
  const s: Stage = await stage(prefix, servers)
  cleanups.push(() => s.drop())
  await s.jsm.consumers.add(s.stream, {
    durable_name: s.consumer,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ackWaitMs * 1_000_000,
  })
  await s.jsm.streams.add({ name: s.deadStream, subjects: [s.deadSubject] })
  return s
}

function consumerChild(s: Stage, journal: string, env: Record<string, string>): ConsumerChild {
  const c = startConsumer({
    NATS_URL: SHARED_SERVER,
    STREAM: s.stream,
    CONSUMER: s.consumer,
    JOURNAL: journal,
    ...env,
  })
  cleanups.push(() => stopChild(c))
  return c
}

const handledBy = (journal: string, pid: number | undefined) =>
  readJournal(journal).filter((l) => l.what === 'handled' && l.pid === pid).length

const drained = (s: Stage) => async () => {
  const info = await s.info()
  return info.num_pending === 0 && info.num_ack_pending === 0
}

describe.runIf(await brokerUp('nats'))('natsSource: consumer processes and faults', () => {
  it('two processes share the consumer; one is SIGKILLed: the other takes over its messages after ack_wait', async () => {
    const N = 6000
    const MAX_IN_FLIGHT = 16
    const s = await prepared('nats-sigkill', 2000)
    await s.publish(N)
    const { dir, remove } = tempDir('nats-sigkill-')
    cleanups.push(remove)
    const journal = join(dir, 'journal')
    const env = { MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), ACK_WAIT_MS: '2000', SPIN_US: '1000' }
    const a = consumerChild(s, journal, env)
    const b = consumerChild(s, journal, env)
    await waitFor(() => a.out().includes('started') && b.out().includes('started'), 'both started')
    await waitFor(() => handledBy(journal, a.child.pid) >= 500, 'A under load')
    expect((await stopChild(a, 'SIGKILL')).signal).toBe('SIGKILL')
    await waitFor(drained(s), 'B to finish, A’s unacked messages included', 120_000)
    await stopChild(b, 'SIGTERM')

    const handled = counts(journal, 'handled')
    for (let id = 0; id < N; id++)
      expect(handled.get(id), `message ${id}`).toBeGreaterThanOrEqual(1)
    const lines = readJournal(journal).filter((l) => l.what === 'handled')
    const duplicates = lines.length - N
    // Only what A had in flight at the kill comes again: at most its maxInFlight.
    expect(duplicates).toBeLessThanOrEqual(MAX_IN_FLIGHT)
    const byA = new Set(lines.filter((l) => l.pid === a.child.pid).map((l) => l.id))
    for (const l of lines) {
      if ((handled.get(l.id) ?? 0) > 1)
        expect(byA.has(l.id), `duplicate ${l.id} was A's`).toBe(true)
    }
    // B took A's messages over: B acked every message A handled without acking.
    const acked = counts(journal, 'acked')
    for (let id = 0; id < N; id++)
      expect(acked.get(id), `message ${id} acked`).toBeGreaterThanOrEqual(1)
    console.log(`SIGKILL: ${duplicates} duplicates (bound ${MAX_IN_FLIGHT})`)
  })

  it('SIGTERM under load: the process stops gracefully; nothing it finished comes again, nothing is lost', async () => {
    const N = 6000
    // ack_wait 10 min: what B gets of A's, it gets because A gave it back (-NAK) on close.
    const s = await prepared('nats-sigterm', 600_000)
    await s.publish(N)
    const { dir, remove } = tempDir('nats-sigterm-')
    cleanups.push(remove)
    const journal = join(dir, 'journal')
    const env = { MAX_IN_FLIGHT: '16', ACK_WAIT_MS: '600000', SPIN_US: '1000' }
    const a = consumerChild(s, journal, env)
    const b = consumerChild(s, journal, env)
    await waitFor(() => a.out().includes('started') && b.out().includes('started'), 'both started')
    await waitFor(() => handledBy(journal, a.child.pid) >= 500, 'A under load')
    const exit = await stopChild(a, 'SIGTERM')
    expect(exit, a.out()).toEqual({ code: 0, signal: null })
    const report = JSON.parse(a.out().trim().split('\n').at(-1) ?? '')
    expect(report).toEqual({ stopped: true, unprocessed: 0, errors: [] })
    // B takes over what A gave back, long before ack_wait.
    await waitFor(drained(s), 'B to finish', 120_000)
    await stopChild(b, 'SIGTERM')

    const handled = counts(journal, 'handled')
    const acked = counts(journal, 'acked')
    for (let id = 0; id < N; id++) {
      expect(handled.get(id), `message ${id} handled once`).toBe(1)
      expect(acked.get(id), `message ${id} acked once`).toBe(1)
    }
    // Every message A handled, A acked (on close at the latest).
    const lines = readJournal(journal)
    const handledByA = lines.filter((l) => l.what === 'handled' && l.pid === a.child.pid)
    const ackedByA = new Set(
      lines.filter((l) => l.what === 'acked' && l.pid === a.child.pid).map((l) => l.id),
    )
    for (const l of handledByA) expect(ackedByA.has(l.id), `A acked ${l.id}`).toBe(true)
  })

  // SIGTERM: nats-server shuts down cleanly, its consumer state on disk: only what was in
  // flight here may come again. SIGKILL: the server also forgets the acks it recorded last
  // (it writes consumer state to disk now and then), so those come again too, after ack_wait:
  // at least once, but no bound from this side.
  it.each([
    ['SIGTERM', 30_000, 16],
    ['SIGKILL', 3000, Number.POSITIVE_INFINITY],
  ] as const)(
    'the broker is killed (%s) and restarted mid-run: the source reports disconnect and reconnect, and finishes',
    async (signal, ackWaitMs, bound) => {
      const { dir, remove } = tempDir('nats-restart-')
      cleanups.push(remove)
      const server = new PrivateServer(await freePort(), join(dir, 'store'))
      cleanups.push(() => server.kill())
      await server.start()
      const N = 5000
      const MAX_IN_FLIGHT = 16
      const s = await prepared('nats-restart', ackWaitMs, server.url)
      await s.publish(N)
      const journal = join(dir, 'journal')

      const queue = createQueue({
        handler: fixture('handler.mjs'),
        threads: 2,
        retry: { attempts: 1 },
        workerData: { journal, spinUs: 500 },
      })
      cleanups.push(() => queue.stop({ timeoutMs: 2000 }))
      await queue.start()
      const source = natsSource({
        servers: server.url,
        connectOptions: { reconnectTimeWait: 250 },
        stream: s.stream,
        consumer: s.consumer,
        maxInFlight: MAX_IN_FLIGHT,
        ackWaitMs,
      })
      cleanups.push(() => source.close())
      const events: string[] = []
      source.on('disconnect', () => events.push('disconnect'))
      source.on('reconnect', () => events.push('reconnect'))
      const errors: Error[] = []
      source.on('error', (e) => errors.push(e))
      const consuming = queue.consume(source)

      await waitFor(() => (counts(journal, 'handled').size ?? 0) >= 1000, 'under load')
      await server.kill(signal)
      await waitFor(() => events.includes('disconnect'), 'the source to see the broker gone')
      await server.start()
      await waitFor(() => events.includes('reconnect'), 'the source to come back', 30_000)
      await waitFor(drained(s), 'every message acked', 120_000)
      await queue.stop({ timeoutMs: 5000 })
      await source.close()
      await consuming

      const handled = counts(journal, 'handled')
      for (let id = 0; id < N; id++)
        expect(handled.get(id), `message ${id}`).toBeGreaterThanOrEqual(1)
      const duplicates = readJournal(journal).length - N
      console.log(
        `restart after ${signal}: ${duplicates} duplicates (bound ${bound}), events ${events.join(' ')}, errors ${errors.map((e) => e.message).join(' | ')}`,
      )
      expect(duplicates).toBeLessThanOrEqual(bound)
      // Only acks that failed while the broker was down, retried.
      for (const e of errors) expect(e.message).toMatch(/acknowledging|extending/)
    },
  )
})
