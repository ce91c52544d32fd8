import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createQueue } from '../../dist/src/index.js'
import { fixture, makeQueue, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

describe('Node conventions', () => {
  it('onIdle() resolves once every accepted message is settled, and at once when idle', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 2,
      laneBytes: 4096,
      workerData: { spinUs: 200 },
    })
    await queue.start()
    await queue.onIdle() // nothing was pushed
    let acked = 0
    // More than the lanes hold: some pushes wait for room when onIdle() is called.
    const pushes = Array.from({ length: 600 }, (_, id) =>
      queue.push({ id }, { ack: () => acked++ }),
    )
    expect(queue.stats().waiting).toBeGreaterThan(0)
    await queue.onIdle()
    expect(acked).toBe(600)
    expect(queue.stats()).toMatchObject({ inFlight: 0, waiting: 0 })
    await Promise.all(pushes)
  })

  it('await using stops the queue at the end of the scope', async () => {
    let acked = 0
    let outside: ReturnType<typeof createQueue> | undefined
    {
      await using queue = createQueue({ handler: fixture('echo.mjs'), threads: 1 })
      outside = queue
      await queue.start()
      for (let i = 0; i < 100; i++) await queue.push(i, { ack: () => acked++ })
    }
    expect(acked).toBe(100)
    expect(outside.accepting).toBe(false)
    expect((await outside.stop()).completed).toBe(100)
  })

  it('a CommonJS handler can require conveyor-lanes/worker inside the workers', async () => {
    const queue = makeQueue({ handler: fixture('cjs-handler.cjs'), threads: 1 })
    await queue.start()
    expect(await queue.run(21)).toEqual({ doubled: 42, loader: 'function' })
  })

  // msgpackr (and its optional native addon) is loaded only by a queue that uses it.
  it('importing the package loads no msgpack codec; codec msgpack loads it', () => {
    const index = fileURLToPath(new URL('../../dist/src/index.js', import.meta.url))
    const probe = (codec: string) =>
      spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { createRequire } from 'node:module'
           const { createQueue } = await import(${JSON.stringify(index)})
           const q = createQueue({ handler: ${JSON.stringify(fixture('echo.mjs'))}, threads: 1, codec: '${codec}' })
           await q.start()
           await q.run({ a: 1 })
           await q.stop()
           const loaded = Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('msgpackr'))
           console.log(JSON.stringify({ loaded }))`,
        ],
        { encoding: 'utf8' },
      )
    const json = probe('json')
    expect(json.status, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout)).toEqual({ loaded: false })
    const msgpack = probe('msgpack')
    expect(msgpack.status, msgpack.stderr).toBe(0)
    expect(JSON.parse(msgpack.stdout)).toEqual({ loaded: true })
  })
})
