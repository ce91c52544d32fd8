// examples/sources/redis/consumer.js — start as many as you like, on any machine:
//   node examples/sources/redis/consumer.js   (feed it: redis-cli XADD orders '*' data '{"id":1}')
import { createQueue } from 'conveyor-lanes'
import { redisSource } from 'conveyor-lanes/sources/redis'

const queue = createQueue({
  handler: new URL('./handler.js', import.meta.url),
  threads: 'auto',
  retry: { attempts: 3 },
})
const source = redisSource({
  redis: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  stream: process.env.STREAM ?? 'orders',
  group: 'billing', // every process of this service: one group, each entry to one of them
  maxInFlight: 32, // fetched and not yet acked, per process
  maxDeliveries: 5, // then XADD to 'orders:dead' (with the error) and XACK
  claimIdleMs: 30_000, // a crashed process's entries go to the others after this
})
source.on('disconnect', ({ error, retryInMs }) =>
  console.error(`redis: ${error.message}; again in ${retryInMs} ms`),
)
source.on('dead-letter', ({ id, error }) => console.error(`dead letter ${id}: ${error.message}`))

process.once('SIGTERM', async () => {
  await queue.stop({ timeoutMs: 10_000 }) // finish what the lanes hold
  await source.close() // ack it; what did not finish goes back to the group
})

await queue.start()
const { consumed } = await queue.consume(source) // runs until stop()
console.log(JSON.stringify({ consumed, completed: queue.stats().completed }))
