import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createQueue, type Queue } from '../../../dist/src/index.js'
import {
  type RedisSource,
  type RedisSourceOptions,
  redisSource,
} from '../../../dist/src/sources/redis/index.js'
import { brokerUp, uniqueName } from '../support/brokers.js'
import { rejection } from '../support/refused.js'
import { addMessages, fixture, readJournal, tempDir, waitFor } from './support.js'

/*
 * What Redis refuses for good ends the source: consume() rejects with SOURCE_FAILED naming the
 * reply and what to change, instead of 'disconnect' events forever. Each error is provoked on
 * the live Redis (127.0.0.1:6379). A reconnect backoff of a few ms: a source that took one of
 * these for a lost connection would pile up disconnects while the test waits.
 */

describe.runIf(await brokerUp('redis'))('redisSource() ends on what Redis refuses', () => {
  let admin: Redis
  const keys: string[] = []
  const users: string[] = []
  const running: { queue: Queue; source: RedisSource<unknown> }[] = []
  const dirs: (() => void)[] = []

  beforeAll(() => {
    admin = new Redis({ host: '127.0.0.1', port: 6379 })
  })
  afterEach(async () => {
    for (const { queue, source } of running.splice(0)) {
      await queue.stop({ timeoutMs: 1000 }).catch(() => {})
      await source.close()
    }
    for (const key of keys.splice(0)) await admin.del(key, `${key}:dead`)
    for (const user of users.splice(0)) await admin.call('ACL', 'DELUSER', user)
    for (const remove of dirs.splice(0)) remove()
  })
  afterAll(() => admin.disconnect())

  function key(prefix: string): string {
    const name = uniqueName(prefix)
    keys.push(name)
    return name
  }

  /** A started queue with a redisSource beside it, and the events the source sends. */
  async function started(options: RedisSourceOptions) {
    const { dir, remove } = tempDir('conveyor-redis-refused-')
    dirs.push(remove)
    const journal = join(dir, 'journal')
    const queue = createQueue({
      handler: fixture('journal.mjs'),
      threads: 1,
      workerData: { journal },
    })
    const source = redisSource({
      redis: { host: '127.0.0.1', port: 6379 },
      blockMs: 50,
      reconnect: { backoffMs: 5, maxBackoffMs: 10 },
      ...options,
    }) as RedisSource<unknown>
    running.push({ queue, source })
    const disconnects: Error[] = []
    source.on('disconnect', ({ error }) => disconnects.push(error))
    const errors: Error[] = []
    source.on('error', (error) => errors.push(error))
    await queue.start()
    return { queue, source, disconnects, errors, journal }
  }

  /** consume() of a redisSource; what it rejects with, and the disconnects heard meanwhile. */
  async function refused(options: RedisSourceOptions) {
    const { queue, source, disconnects, errors, journal } = await started(options)
    const error = await rejection(queue.consume(source))
    return { error, disconnects, errors, source, journal }
  }

  it('a stream key that holds a string (WRONGTYPE): SOURCE_FAILED, no reconnects', async () => {
    const stream = key('redis-wrongtype')
    await admin.set(stream, 'not a stream')
    const { error, disconnects, errors } = await refused({ stream, group: 'g' })
    expect(error).toMatchObject({
      name: 'ConveyorError',
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        `redisSource(): key '${stream}' holds something else than a stream (Redis answered WRONGTYPE`,
      ),
    })
    expect(error.message).toMatch(/pass the name of a stream as `stream`, or delete that key/)
    expect((error.cause as Error).message).toMatch(/^WRONGTYPE/)
    expect(disconnects).toEqual([])
    expect(errors).toEqual([])
    expect(await admin.get(stream)).toBe('not a stream')
  })

  it.each([
    ['a stream without the group', true],
    ['no stream at all', false],
  ])('createGroup: false and %s (NOGROUP): SOURCE_FAILED, no reconnects', async (_what, exists) => {
    const stream = key('redis-nogroup-fatal')
    if (exists) await addMessages(admin, stream, 3)
    const { error, disconnects } = await refused({ stream, group: 'billing', createGroup: false })
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        `group 'billing' does not exist on stream '${stream}' (Redis answered NOGROUP`,
      ),
    })
    expect(error.message).toMatch(/create it \(XGROUP CREATE .* billing 0 MKSTREAM\)/)
    expect((error.cause as Error).message).toMatch(/^NOGROUP/)
    expect(disconnects).toEqual([])
    expect(await admin.exists(stream)).toBe(exists ? 1 : 0)
  })

  it('a user without the stream commands (NOPERM): SOURCE_FAILED, no reconnects', async () => {
    const stream = key('redis-noperm')
    await addMessages(admin, stream, 1)
    const user = uniqueName('conveyor-noperm')
    users.push(user)
    await admin.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '+@all', '-xreadgroup', '-xgroup')
    const { error, disconnects } = await refused({
      redis: { host: '127.0.0.1', port: 6379, username: user, password: 'pw' },
      stream,
      group: 'g',
    })
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining(
        'Redis refused a command of the source (Redis answered NOPERM',
      ),
    })
    expect(error.message).toMatch(/let its user run the stream commands \(\+@stream\)/)
    expect(disconnects).toEqual([])
  })

  it('credentials Redis refuses (WRONGPASS): SOURCE_FAILED, no reconnects', async () => {
    const stream = key('redis-wrongpass')
    const { error, disconnects } = await refused({
      redis: {
        host: '127.0.0.1',
        port: 6379,
        username: uniqueName('conveyor-nosuchuser'),
        password: 'wrong',
      },
      stream,
      group: 'g',
    })
    expect(error).toMatchObject({
      code: 'SOURCE_FAILED',
      message: expect.stringContaining('Redis refused the credentials (Redis answered WRONGPASS'),
    })
    expect(disconnects).toEqual([])
  })

  it('mid-run: the group destroyed under createGroup: false ends the source; what it handled stays acked', async () => {
    const stream = key('redis-destroyed')
    await addMessages(admin, stream, 5)
    await admin.xgroup('CREATE', stream, 'g', '0')
    // close() finds no group to hand entries back to: it says so, on 'error' (collected).
    const { queue, source, disconnects, journal } = await started({
      stream,
      group: 'g',
      createGroup: false,
    })
    const consuming = queue.consume(source)
    consuming.catch(() => {})
    await waitFor(async () => {
      const [pending] = (await admin.xpending(stream, 'g')) as [number, ...unknown[]]
      return readJournal(journal).size === 5 && pending === 0
    }, 'the five handled and acked')
    await admin.xgroup('DESTROY', stream, 'g')
    const error = await rejection(consuming)
    expect(error).toMatchObject({ code: 'SOURCE_FAILED', message: /group 'g' does not exist/ })
    expect(disconnects).toEqual([])
    expect([...readJournal(journal).values()]).toEqual([1, 1, 1, 1, 1])
  })
})
