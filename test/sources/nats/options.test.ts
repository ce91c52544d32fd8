import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { AckPolicy } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterEach, describe, expect, it } from 'vitest'
import { natsSource } from '../../../dist/src/sources/nats/index.js'
import { brokerUp } from '../support/brokers.js'
import { rejection } from '../support/refused.js'
import { fixture, SHARED_SERVER, type Stage, stage, waitFor } from './support.js'

const root = fileURLToPath(new URL('../../..', import.meta.url))

function thrown(fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a throw')
}

describe('natsSource() options', () => {
  const base = { stream: 'ORDERS', consumer: 'workers' }
  it.each([
    ['no options', undefined, /options are required/],
    ['a missing stream', { consumer: 'w' }, /stream must be a JetStream name/],
    ['a stream with a dot', { ...base, stream: 'a.b' }, /stream must be a JetStream name/],
    ['a missing consumer', { stream: 'S' }, /consumer must be a JetStream name/],
    ['a consumer with a wildcard', { ...base, consumer: 'w*' }, /consumer must be/],
    ['an unknown option', { ...base, durable: 'x' }, /unknown option 'durable'/],
    ['connection and servers', { ...base, connection: {}, servers: 'x' }, /connection must be/],
    ['a connection that is not one', { ...base, connection: { publish: 1 } }, /connection must be/],
    ['empty servers', { ...base, servers: [] }, /servers must be/],
    ['servers in connectOptions', { ...base, connectOptions: { servers: 'x' } }, /use the servers/],
    [
      'ackWaitMs below 1 s',
      { ...base, ackWaitMs: 500 },
      /ackWaitMs must be a number of milliseconds ≥ 1000/,
    ],
    ['ackWaitMs not a number', { ...base, ackWaitMs: '30s' }, /ackWaitMs must be/],
    ['expiresMs below 1 s', { ...base, expiresMs: 10 }, /expiresMs must be/],
    ['a negative retryDelayMs', { ...base, retryDelayMs: -1 }, /retryDelayMs must be/],
    [
      'a wildcard deadLetterSubject',
      { ...base, deadLetterSubject: 'dead.*' },
      /deadLetterSubject must be a subject without wildcards/,
    ],
    [
      'an empty deadLetterSubject token',
      { ...base, deadLetterSubject: 'dead..x' },
      /deadLetterSubject/,
    ],
    [
      'filterSubject without createConsumer',
      { ...base, filterSubject: 'orders.new' },
      /filterSubject applies with createConsumer/,
    ],
    [
      'a bad filterSubject',
      { ...base, createConsumer: true, filterSubject: 'a.>.b' },
      /filterSubject must be/,
    ],
    [
      'createConsumer not a boolean',
      { ...base, createConsumer: 'yes' },
      /createConsumer must be true or false/,
    ],
    [
      'maxInFlight 0 (shared option)',
      { ...base, maxInFlight: 0 },
      /maxInFlight must be an integer ≥ 1/,
    ],
    [
      'a bad reconnect backoff (shared)',
      { ...base, reconnect: { backoffMs: -1 } },
      /reconnect.backoffMs/,
    ],
  ])('rejects %s with INVALID_OPTION', (_what, options, message) => {
    const error = thrown(() => natsSource(options as never))
    expect(error).toMatchObject({ code: 'INVALID_OPTION' })
    expect(error.message).toMatch(/^natsSource\(\)/)
    expect(error.message).toMatch(message)
  })

  it('connection together with connectOptions is refused', async () => {
    const fake = { publish() {}, subscribe() {}, flush() {}, status() {} }
    expect(
      thrown(() => natsSource({ ...base, connection: fake as never, connectOptions: {} })),
    ).toMatchObject({ code: 'INVALID_OPTION', message: /not with connection/ })
    expect(
      thrown(() => natsSource({ ...base, connection: fake as never, servers: 'x' })),
    ).toMatchObject({ code: 'INVALID_OPTION', message: /connection or servers, not both/ })
  })

  it('importing conveyor-lanes never loads the NATS client; the nats entry says what to install', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', fixture('hide-nats.mjs'), fixture('imports.mjs')],
      { cwd: root, encoding: 'utf8' },
    )
    const result = JSON.parse(out.trim().split('\n').at(-1) ?? '')
    expect(result['conveyor-lanes']).toMatchObject({ ok: true })
    expect(result['conveyor-lanes/sources']).toMatchObject({ ok: true })
    expect(result['conveyor-lanes/sources/nats']).toMatchObject({
      ok: false,
      code: 'PEER_MISSING',
      message: expect.stringContaining(
        'npm install @nats-io/transport-node@3 @nats-io/jetstream@3',
      ),
    })
  })
})

describe.runIf(await brokerUp('nats'))('natsSource() checks its stream and consumer', () => {
  const stages: Stage[] = []
  const closing: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const close of closing.splice(0)) await close()
    for (const s of stages.splice(0)) await s.drop()
  })

  /**
   * Starts pulling; resolves with what the iteration threw (within a bound only a hang misses),
   * the 'error' events and the disconnects heard meanwhile.
   */
  async function refusal(options: Parameters<typeof natsSource>[0]) {
    const source = natsSource({ reconnect: { backoffMs: 5, maxBackoffMs: 10 }, ...options })
    closing.push(() => source.close())
    const errors: Error[] = []
    const disconnects: Error[] = []
    source.on('error', (e) => errors.push(e))
    source.on('disconnect', ({ error }) => disconnects.push(error))
    const error = await rejection(source[Symbol.asyncIterator]().next())
    return { source, error, errors, disconnects }
  }

  /** The source ended with SOURCE_FAILED, caused by the check's INVALID_OPTION: nothing retried. */
  function endedWith(outcome: Awaited<ReturnType<typeof refusal>>, message: RegExp): void {
    const { error, errors, disconnects } = outcome
    expect(error).toMatchObject({ name: 'ConveyorError', code: 'SOURCE_FAILED', message })
    expect(error.message).toMatch(/the source stopped: reconnecting would not change this/)
    expect(error.cause).toMatchObject({ code: 'INVALID_OPTION', message })
    expect(disconnects).toEqual([])
    expect(errors).toEqual([])
  }

  async function newStage(prefix: string, subjects?: string[]): Promise<Stage> {
    const s = await stage(prefix)
    stages.push(s)
    if (subjects) await s.jsm.streams.update(s.stream, { subjects })
    return s
  }

  it('a stream that does not exist (JetStream 10059): the source ends, SOURCE_FAILED, no reconnects', async () => {
    endedWith(
      await refusal({ servers: SHARED_SERVER, stream: 'NO_SUCH_STREAM_conveyor', consumer: 'w' }),
      /stream 'NO_SUCH_STREAM_conveyor' does not exist \(JetStream: stream not found, 10059\): create it first/,
    )
  })

  it('a stream that does not exist ends the source with createConsumer too (it never creates streams)', async () => {
    endedWith(
      await refusal({
        servers: SHARED_SERVER,
        stream: 'NO_SUCH_STREAM_conveyor',
        consumer: 'w',
        createConsumer: true,
      }),
      /stream 'NO_SUCH_STREAM_conveyor' does not exist/,
    )
  })

  it('a consumer that does not exist, without createConsumer (JetStream 10014): the source ends', async () => {
    const s = await newStage('nats-noconsumer')
    await s.jsm.streams.add({ name: s.deadStream, subjects: [s.deadSubject] })
    await s.publish(3)
    endedWith(
      await refusal({ servers: SHARED_SERVER, stream: s.stream, consumer: s.consumer }),
      /consumer 'workers' does not exist on stream .* \(JetStream: consumer not found, 10014\): create it .* or pass createConsumer: true/,
    )
  })

  it.each([
    ['a push consumer', { deliver_subject: 'somewhere.push' }, /is a push consumer/],
    ['ack_policy none', { ack_policy: AckPolicy.None }, /needs ack_policy 'explicit'/],
    [
      'ack_wait below ackWaitMs',
      { ack_wait: 5_000_000_000 },
      /ack_wait 5000 ms, below ackWaitMs 30000/,
    ],
    [
      'max_deliver not above maxDeliveries',
      { max_deliver: 5 },
      /max_deliver 5, not above maxDeliveries 5/,
    ],
  ])(
    'an existing consumer with %s: the source ends (INVALID_OPTION)',
    async (_what, config, message) => {
      const s = await newStage('nats-badconsumer')
      await s.jsm.consumers.add(s.stream, {
        durable_name: s.consumer,
        ack_policy: AckPolicy.Explicit,
        ...config,
      })
      await s.jsm.streams.add({ name: s.deadStream, subjects: [s.deadSubject] })
      endedWith(
        await refusal({ servers: SHARED_SERVER, stream: s.stream, consumer: s.consumer }),
        message,
      )
    },
  )

  it('no stream for the dead letters (without createConsumer): the source ends (INVALID_OPTION)', async () => {
    const s = await newStage('nats-nodead')
    await s.jsm.consumers.add(s.stream, {
      durable_name: s.consumer,
      ack_policy: AckPolicy.Explicit,
    })
    endedWith(
      await refusal({ servers: SHARED_SERVER, stream: s.stream, consumer: s.consumer }),
      /no stream stores deadLetterSubject '.*\.dead'/,
    )
  })

  it('a dead-letter subject the consumer itself receives would loop back: the source ends (INVALID_OPTION)', async () => {
    const s = await newStage('nats-loop')
    await s.jsm.streams.update(s.stream, { subjects: [`${s.stream}.>`] })
    endedWith(
      await refusal({
        servers: SHARED_SERVER,
        stream: s.stream,
        consumer: s.consumer,
        createConsumer: true,
      }),
      /is stored in stream .* and consumer 'workers' receives it: dead letters would come back/,
    )
  })

  it('a dead-letter subject in the same stream, outside the consumer filter, is fine', async () => {
    const s = await newStage('nats-samestream')
    await s.jsm.streams.update(s.stream, { subjects: [`${s.stream}.>`] })
    await s.js.publish(s.subject, 'not json')
    const source = natsSource({
      servers: SHARED_SERVER,
      stream: s.stream,
      consumer: s.consumer,
      createConsumer: true,
      filterSubject: s.subject,
    })
    closing.push(() => source.close())
    const dead = new Promise((resolve) => source.once('dead-letter', resolve))
    void source[Symbol.asyncIterator]().next()
    await dead
    const info = await s.jsm.streams.info(s.stream, { subjects_filter: '>' })
    expect(info.state.subjects).toEqual({ [s.subject]: 1, [s.deadSubject]: 1 })
    await waitFor(async () => (await s.info()).num_ack_pending === 0, 'the original terminated')
    expect((await s.info()).num_pending).toBe(0)
  })
})

describe.runIf(await brokerUp('nats'))('natsSource() with a connection of yours', () => {
  it('a closed connection ends the source (it never reopens), never used', async () => {
    const nc = await connect({ servers: SHARED_SERVER })
    await nc.close()
    const source = natsSource({
      connection: nc,
      stream: 'S',
      consumer: 'w',
      reconnect: { backoffMs: 10, maxBackoffMs: 20 },
    })
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    const error = await rejection(source[Symbol.asyncIterator]().next())
    expect(error).toMatchObject({ code: 'SOURCE_FAILED' })
    expect(error.message).toMatch(/the connection passed as `connection` is closed/)
    expect(disconnects).toEqual([])
    await source.close()
  })
})
