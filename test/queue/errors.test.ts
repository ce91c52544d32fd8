import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createQueue, isConveyorError, type QueueOptions } from '../../dist/src/index.js'
import { fixture, makeQueue, rejection, stopQueuesAfterEach, thrown } from './helpers.js'

stopQueuesAfterEach()

const echo = fixture('echo.mjs')

describe('typed errors', () => {
  it('createQueue: a missing handler option or file is HANDLER_INVALID, naming the path', () => {
    const none = thrown(() => createQueue({} as QueueOptions))
    expect(isConveyorError(none, 'HANDLER_INVALID')).toBe(true)
    expect(none.message).toContain('handler')
    const missing = '/definitely/not/here/handler.mjs'
    for (const handler of [missing, pathToFileURL(missing)]) {
      const err = thrown(() => createQueue({ handler }))
      expect(isConveyorError(err, 'HANDLER_INVALID')).toBe(true)
      expect(err.message).toContain(missing)
    }
    expect(
      isConveyorError(
        thrown(() => createQueue(undefined as never)),
        'INVALID_OPTION',
      ),
    ).toBe(true)
  })

  it.each([
    ['no-default.mjs', 'missing'],
    ['default-object.mjs', 'handle'],
    ['setup-throws.mjs', 'setup exploded'],
    ['import-throws.mjs', 'module body exploded'],
  ])('start(): %s is HANDLER_INVALID, naming the path', async (file, detail) => {
    const queue = makeQueue({ handler: fixture(file), threads: 2 })
    const err = await rejection(queue.start())
    expect(isConveyorError(err, 'HANDLER_INVALID')).toBe(true)
    expect(err.message).toContain(fixture(file))
    expect(err.message).toContain(detail)
    // The queue is finished: no pushes, no second start, and stop() still answers.
    expect(await rejection(queue.push(1))).toMatchObject({ code: 'QUEUE_STOPPED' })
    expect(await rejection(queue.start())).toMatchObject({ code: 'QUEUE_STOPPED' })
    expect(await queue.stop()).toMatchObject({ pushed: 0, unprocessed: [] })
  })

  // A worker that dies during the handler's setup (process.exit, an uncaught exception, OOM)
  // makes Piscina reject the lane task with a raw Error: start() must turn it into
  // HANDLER_INVALID naming the handler, like a setup() that throws.
  it('start(): a worker that dies in setup() is a ConveyorError naming the path', async () => {
    const queue = makeQueue({ handler: fixture('setup-exits.mjs'), threads: 2 })
    const err = await rejection(queue.start())
    expect(isConveyorError(err), String(err)).toBe(true)
    expect(err.message).toContain(fixture('setup-exits.mjs'))
  })

  it('push / run / stop before start are QUEUE_NOT_STARTED', async () => {
    const queue = makeQueue({ handler: echo, threads: 1 })
    for (const p of [queue.push(1), queue.run(1), queue.stop()]) {
      const err = await rejection(p)
      expect(isConveyorError(err, 'QUEUE_NOT_STARTED')).toBe(true)
    }
  })

  it('a message the codec cannot encode is ENCODE_FAILED and nothing is enqueued', async () => {
    const queue = makeQueue({ handler: echo, threads: 2 })
    await queue.start()
    await queue.push({ ok: true })
    const circular: Record<string, unknown> = {}
    circular.self = circular
    for (const bad of [{ id: 1, big: 10n }, undefined, circular, () => 1]) {
      let acked = false
      const err = await rejection(queue.push(bad, { ack: () => (acked = true) }))
      expect(isConveyorError(err, 'ENCODE_FAILED'), String(err)).toBe(true)
      expect(err.message).toContain("codec 'json'")
      expect(acked).toBe(false)
    }
    expect(isConveyorError(await rejection(queue.run({ big: 1n })), 'ENCODE_FAILED')).toBe(true)
    expect(queue.stats()).toMatchObject({ pushed: 1, waiting: 0 })
    expect(await queue.run('still fine')).toBe('still fine')
    const report = await queue.stop()
    expect(report).toMatchObject({ pushed: 2, completed: 2, unprocessed: [] })
  })

  it('a message over half of laneBytes is MESSAGE_TOO_LARGE; one at the limit fits', async () => {
    const queue = makeQueue({ handler: echo, threads: 2, laneBytes: 4096 })
    await queue.start()
    const max = 4096 / 2 - 8 // payload bytes a record may carry
    // JSON strings: two quote bytes around the text.
    const atLimit = 'x'.repeat(max - 2)
    expect(await queue.run(atLimit)).toBe(atLimit)
    const multibyte = '€'.repeat(Math.floor((max - 2) / 3)) // 3 UTF-8 bytes each
    expect(await queue.run(multibyte)).toBe(multibyte)
    for (const big of [
      'x'.repeat(max - 1),
      '€'.repeat(Math.ceil((max - 1) / 3)),
      'x'.repeat(5000),
    ]) {
      const err = await rejection(queue.push(big))
      expect(isConveyorError(err, 'MESSAGE_TOO_LARGE'), String(err)).toBe(true)
      expect(isConveyorError(await rejection(queue.run(big)), 'MESSAGE_TOO_LARGE')).toBe(true)
    }
    expect(queue.stats()).toMatchObject({ pushed: 2, waiting: 0 })
    // One that has to wait (queue paused) is refused when its turn comes.
    queue.pause()
    const waiting = rejection(queue.push('y'.repeat(3000)))
    const after = queue.run('after')
    queue.resume()
    expect(isConveyorError(await waiting, 'MESSAGE_TOO_LARGE')).toBe(true)
    expect(await after).toBe('after')
    expect(queue.stats().pushed).toBe(3)
  })

  it('pushes beyond maxWaiting are QUEUE_FULL', async () => {
    const queue = makeQueue({ handler: echo, threads: 1, maxWaiting: 2 })
    await queue.start()
    queue.pause()
    const held = [queue.push(1), queue.push(2)]
    const err = await rejection(queue.push(3))
    expect(isConveyorError(err, 'QUEUE_FULL')).toBe(true)
    queue.resume()
    await Promise.all(held)
    expect(queue.stats().pushed).toBe(2)
  })

  it.each<[string, Partial<QueueOptions>]>([
    ['threads 0', { threads: 0 }],
    ['threads -1', { threads: -1 }],
    ['threads 1.5', { threads: 1.5 }],
    ['threads min > max', { threads: { min: 3, max: 2 } }],
    ['laneBytes 1000', { laneBytes: 1000 }],
    ['laneBytes 2048', { laneBytes: 2048 }],
    ['laneBytes 5000', { laneBytes: 5000 }],
    ['unknown codec', { codec: 'yaml' as never }],
    ['codec without module', { codec: {} as never }],
    ['ordering', { ordering: 'random' as never }],
    ['retry.attempts 0', { retry: { attempts: 0 } }],
    ['retry.attempts 256', { retry: { attempts: 256 } }],
    ['retry.backoffMs -1', { retry: { backoffMs: -1 } }],
    ['watermarks low ≥ high', { watermarks: { high: 0.5, low: 0.5 } }],
    ['watermarks high > 1', { watermarks: { high: 1.5 } }],
    ['maxWaiting -1', { maxWaiting: -1 }],
  ])('createQueue: %s is INVALID_OPTION', (_name, options) => {
    const err = thrown(() => createQueue({ handler: echo, ...options }))
    expect(isConveyorError(err, 'INVALID_OPTION'), String(err)).toBe(true)
  })

  it('a codec module without encode/decode is INVALID_OPTION at start()', async () => {
    const queue = makeQueue({
      handler: echo,
      threads: 1,
      codec: { module: fixture('no-default.mjs') },
    })
    const err = await rejection(queue.start())
    expect(isConveyorError(err, 'INVALID_OPTION'), String(err)).toBe(true)
    expect(err.message).toContain('no-default.mjs')
  })

  // A codec module that cannot be imported is an INVALID_OPTION, like one of the wrong shape,
  // not Node's raw ERR_MODULE_NOT_FOUND.
  it('a codec module that does not exist is a ConveyorError', async () => {
    const codec = { module: '/definitely/not/here/codec.mjs' }
    let err: Error & { code?: string }
    try {
      const queue = makeQueue({ handler: echo, threads: 1, codec })
      err = await rejection(queue.start())
    } catch (sync) {
      err = sync as Error
    }
    expect(isConveyorError(err), String(err)).toBe(true)
  })

  // start() failing before any worker existed (the codec) left stop() to close lanes that
  // were never made: it must still answer, with an empty report.
  it('stop() after a start() that failed in the codec answers with an empty report', async () => {
    const queue = makeQueue({
      handler: echo,
      threads: 1,
      codec: { module: fixture('no-default.mjs') },
    })
    expect(await rejection(queue.start())).toMatchObject({ code: 'INVALID_OPTION' })
    expect(await queue.stop()).toMatchObject({ pushed: 0, unprocessed: [], drained: true })
  })
})
