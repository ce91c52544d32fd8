// examples/sources/redis/results.js — each order's digest, XADDed to an output stream in batches:
//   node examples/sources/redis/results.js   (then: redis-cli XRANGE orders:billed - +)
import { createQueue } from 'conveyor-lanes'
import { BulkExecutor } from 'conveyor-lanes/executors'
import { redisSource } from 'conveyor-lanes/sources/redis'
import { Redis } from 'ioredis'

const stream = process.env.STREAM ?? 'orders'
const output = process.env.OUT_STREAM ?? `${stream}:billed`
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')

const queue = createQueue({
  handler: new URL('./handler.js', import.meta.url),
  threads: 'auto',
  retry: { attempts: 3 },
})
const source = redisSource({
  redis, // its acks and our XADDs share this connection; it reads on a duplicate()
  stream,
  group: 'billing',
  maxInFlight: 256, // fetched and not yet acked: in a lane, or its result not yet written
})
source.on('dead-letter', ({ id, error }) => console.error(`dead letter ${id}: ${error.message}`))

let written = 0
const results = new BulkExecutor(
  async (batch) => {
    const pipeline = redis.pipeline()
    for (const { envelope, digest } of batch) {
      // entry: the input's id, the same when Redis delivers it again; readers dedupe on it
      pipeline.xadd(output, '*', 'entry', envelope.id, 'id', envelope.value.id, 'digest', digest)
    }
    for (const [error] of await pipeline.exec()) if (error) throw error
    for (const { envelope } of batch) envelope.ack() // written: now the input may go
    written += batch.length
  },
  {
    maxItems: 128, // ≤ maxInFlight: a result waiting here still holds its input's credit
    intervalMs: 20,
    // Not written: the inputs go back to Redis (redelivered, dead-lettered after maxDeliveries).
    onError: (error, batch) => {
      for (const { envelope } of batch) envelope.nack(error)
    },
  },
)

const running = new Set()
async function shutdown() {
  await queue.stop({ timeoutMs: 10_000 }) // finish what the lanes hold
  await Promise.all(running) // their results are in the executor now
  await results.close() // write the last batches, and ack their inputs
  await source.close() // send those acks; what did not finish goes back to the group
  await redis.quit()
  console.log(JSON.stringify({ written, completed: queue.stats().completed }))
}
process.once('SIGTERM', shutdown)

await queue.start()
// Pulls on credit: no more than maxInFlight unacked inputs, however fast this loop runs.
try {
  for await (const envelope of source) {
    if (!queue.accepting) break // SIGTERM: fetch no more (what was fetched goes back on close())
    const task = queue
      .run(envelope.value)
      .then((digest) => results.add({ envelope, digest }))
      .catch((error) => envelope.nack(error)) // the queue gave up on it: Redis delivers it again
    running.add(task)
    task.then(() => running.delete(task))
  }
} catch (error) {
  // The source ended: Redis refuses its configuration for good (SOURCE_FAILED says what to change).
  console.error(error.message)
  process.exitCode = 1
  await shutdown() // what was read still finishes, is written and acked
}
