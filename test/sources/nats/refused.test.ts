import { type ChildProcess, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import { createQueue } from '../../../dist/src/index.js'
import { natsSource } from '../../../dist/src/sources/nats/index.js'
import { brokerUp } from '../support/brokers.js'
import { rejection } from '../support/refused.js'
import { counts, fixture, freePort, SHARED_SERVER, stage, tempDir, waitFor } from './support.js'

/*
 * What JetStream refuses for good ends the source: consume() rejects with SOURCE_FAILED
 * instead of 'disconnect' events forever (options.test.ts has each consumer check; here the
 * whole path through a queue, a consumer deleted mid-run, and refused permissions on a private
 * nats-server with users). A reconnect backoff of a few ms: a source that took one of these for
 * a lost connection would pile up disconnects while the test waits.
 */

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function queueWithJournal(prefix: string) {
  const { dir, remove } = tempDir(prefix)
  cleanups.push(remove)
  const journal = join(dir, 'journal')
  const queue = createQueue({
    handler: fixture('handler.mjs'),
    threads: 1,
    workerData: { journal },
  })
  cleanups.push(() => queue.stop({ timeoutMs: 1000 }).catch(() => {}))
  return { queue, journal }
}

/** A nats-server of this test's own with users (config file), killed by its pid only. */
async function serverWithUsers(dir: string): Promise<string> {
  const port = await freePort()
  const config = join(dir, 'nats.conf')
  writeFileSync(
    config,
    `listen: 127.0.0.1:${port}
jetstream { store_dir: "${join(dir, 'store')}" }
authorization {
  users = [
    { user: admin, password: pw }
    { user: limited, password: pw, permissions: { publish: { deny: ["$JS.API.STREAM.INFO.>"] } } }
    { user: nopull, password: pw, permissions: { publish: { deny: ["$JS.API.CONSUMER.MSG.NEXT.>"] } } }
  ]
}
`,
  )
  const child: ChildProcess = spawn('nats-server', ['-c', config], { stdio: 'ignore' })
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    process.kill(child.pid!, 'SIGKILL')
    await exited
  })
  const url = `127.0.0.1:${port}`
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode})`)
      const nc = await connect({ servers: url, user: 'admin', pass: 'pw', reconnect: false })
      await jetstreamManager(nc)
      await nc.close()
      return true
    },
    `the private nats-server on ${url}`,
    20_000,
  )
  return url
}

describe.runIf(await brokerUp('nats'))('natsSource() ends on what JetStream refuses', () => {
  it('consume() rejects when the stream does not exist: SOURCE_FAILED, no reconnects', async () => {
    const { queue } = queueWithJournal('nats-refused-')
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: 'NO_SUCH_STREAM_conveyor_refused',
      consumer: 'workers',
      reconnect: { backoffMs: 5, maxBackoffMs: 10 },
    })
    cleanups.push(() => source.close())
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    await queue.start()
    const error = await rejection(queue.consume(source))
    expect(error).toMatchObject({
      name: 'ConveyorError',
      code: 'SOURCE_FAILED',
      message: expect.stringMatching(
        /^natsSource\(\): stream 'NO_SUCH_STREAM_conveyor_refused' does not exist \(JetStream: stream not found, 10059\): create it first/,
      ),
    })
    expect(error.cause).toMatchObject({ code: 'INVALID_OPTION' })
    expect(disconnects).toEqual([])
  })

  it('a consumer deleted mid-run, without createConsumer: one disconnect (the pull ends), then the source ends', async () => {
    const s = await stage('nats-deleted')
    cleanups.push(() => s.drop())
    await s.jsm.consumers.add(s.stream, {
      durable_name: s.consumer,
      ack_policy: AckPolicy.Explicit,
    })
    await s.jsm.streams.add({ name: s.deadStream, subjects: [s.deadSubject] })
    await s.publish(5)
    const { queue, journal } = queueWithJournal('nats-deleted-')
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: s.stream,
      consumer: s.consumer,
      reconnect: { backoffMs: 5, maxBackoffMs: 10 },
    })
    cleanups.push(() => source.close())
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    await queue.start()
    const consuming = queue.consume(source)
    consuming.catch(() => {})
    await waitFor(async () => {
      const info = await s.info()
      return counts(journal, 'handled').size === 5 && info.num_ack_pending === 0
    }, 'the five handled and acked')
    await s.jsm.consumers.delete(s.stream, s.consumer)
    const error = await rejection(consuming)
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringMatching(/consumer 'workers' does not exist on stream/),
    })
    // The open pull request ended with a status (409): that one is a disconnect, as any ended
    // pull is; the check after it finds the consumer gone.
    expect(disconnects.length).toBeLessThanOrEqual(1)
    for (const d of disconnects) expect(d.message).toMatch(/409 Consumer Deleted/)
    expect([...counts(journal, 'handled').values()]).toEqual([1, 1, 1, 1, 1])
  })

  /**
   * A source on a private server with users, as `user`, on a stream 'ORDERS' that exists: what
   * its first next() rejects with (within `boundMs`), and the disconnects heard meanwhile.
   */
  async function refusedAs(user: string, options: { expiresMs?: number }, boundMs?: number) {
    const { dir, remove } = tempDir('nats-perm-')
    cleanups.push(remove)
    const url = await serverWithUsers(dir)
    const admin = await connect({ servers: url, user: 'admin', pass: 'pw' })
    cleanups.push(() => admin.close())
    const jsm = await jetstreamManager(admin)
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] })
    const source = natsSource({
      servers: url,
      connectOptions: { user, pass: 'pw' },
      stream: 'ORDERS',
      consumer: 'workers',
      createConsumer: true,
      reconnect: { backoffMs: 5, maxBackoffMs: 10 },
      ...options,
    })
    cleanups.push(() => source.close())
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    const error = await rejection(source[Symbol.asyncIterator]().next(), boundMs)
    return { error, disconnects }
  }

  it('JetStream API requests the user may not publish (permissions violation): SOURCE_FAILED, no reconnects', async () => {
    const { error, disconnects } = await refusedAs('limited', {})
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        'natsSource(): NATS refused a JetStream API request of the source (Permissions Violation for Publish to "$JS.API.STREAM.INFO.ORDERS")',
      ),
    })
    expect(error.message).toMatch(/allow its user to publish to '\$JS\.API\.>'/)
    expect(disconnects).toEqual([])
  })

  it('pull requests the user may not publish: SOURCE_FAILED, not a silent wait for answers that never come', async () => {
    // Expiry far longer than the bound: only the refusal itself can end the wait in time.
    const { error, disconnects } = await refusedAs('nopull', { expiresMs: 60_000 }, 20_000)
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        'Permissions Violation for Publish to "$JS.API.CONSUMER.MSG.NEXT.ORDERS.workers"',
      ),
    })
    expect(disconnects).toEqual([])
  })
})
