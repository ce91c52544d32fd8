import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { brokerUp, uniqueName } from '../support/brokers.js'
import { examplePath, killLeft, startExample } from '../support/example-process.js'
import { groupState, waitFor, waitForReaders } from './support.js'

const example = examplePath('redis/consumer.js')

describe.runIf(await brokerUp('redis'))('examples/sources/redis/consumer.js', () => {
  let admin: Redis
  beforeAll(() => {
    admin = new Redis({ host: '127.0.0.1', port: 6379 })
  })
  afterAll(() => admin.disconnect())

  it('runs as written: two processes share the group, and stop on SIGTERM', async () => {
    const stream = uniqueName('redis-example')
    const env = { STREAM: stream, REDIS_URL: 'redis://127.0.0.1:6379' }
    const processes = [startExample(example, env), startExample(example, env)]
    try {
      // Both are reading before orders arrive.
      await waitForReaders(admin, processes)
      const count = 2000
      const pipeline = admin.pipeline()
      for (let id = 0; id < count; id++) {
        pipeline.xadd(stream, '*', 'data', JSON.stringify({ id, email: `u${id}@example.com` }))
      }
      await pipeline.exec()
      await waitFor(async () => {
        const state = await groupState(admin, stream, 'billing')
        return state.pending === 0 && state.lag === 0
      }, 'every order acked')
      for (const p of processes) p.child.kill('SIGTERM')
      const codes = await Promise.all(processes.map((p) => p.exited))
      expect(codes, processes.map((p) => p.err()).join('\n')).toEqual([0, 0])
      const reports = processes.map((p) => p.report<{ completed: number }>())
      expect(reports.reduce((sum, r) => sum + r.completed, 0)).toBe(count)
      // The default consumer names (host-pid) left the group on close().
      expect(await groupState(admin, stream, 'billing')).toMatchObject({ consumers: 0 })
    } finally {
      killLeft(processes)
      await admin.del(stream, `${stream}:dead`)
    }
  })
})
