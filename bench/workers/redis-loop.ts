import { Redis } from 'ioredis'
import { type LoopOptions, plainLoop } from '../support/redis-loop.js'

/**
 * A child process of the redis source suite: the plain XREADGROUP/XACK loop
 * (support/redis-loop.ts) on its own, one consumer of the group. argv[2]: { url, ...LoopOptions }
 * as JSON. Prints "ready" once connected; stops between batches on SIGTERM.
 */
const { url, ...options } = JSON.parse(process.argv[2] ?? '{}') as LoopOptions & { url: string }
const redis = new Redis(url)
let stopping = false
process.once('SIGTERM', () => {
  stopping = true
})
await redis.ping()
process.stdout.write('ready\n')
await plainLoop(redis, options, () => stopping)
redis.disconnect()
