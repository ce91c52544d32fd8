// examples/sources/amqp/consumer.js — start one per process or machine; they share the queue
import { createQueue } from 'conveyor-lanes'
import { amqpSource } from 'conveyor-lanes/sources/amqp'

const queue = createQueue({
  handler: new URL('./handler.js', import.meta.url),
  threads: 'auto',
  retry: { attempts: 3, backoffMs: 50 }, // in the worker; then the message goes back to RabbitMQ
})
await queue.start()

const source = amqpSource({
  url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  queue: process.env.QUEUE ?? 'orders', // declared durable and quorum; dead letters in orders.dead
  maxInFlight: 32, // prefetch: at most 32 unacked messages in this process
  maxDeliveries: 5, // a message that failed 5 deliveries goes to the dead-letter exchange
})
source.on('disconnect', ({ error, retryInMs }) =>
  console.error(`RabbitMQ: ${error.message}; again in ${Math.round(retryInMs)} ms`),
)
source.on('dead-letter', ({ id, error }) => console.error(`dead letter ${id}: ${error.message}`))

process.once('SIGTERM', async () => {
  const report = await queue.stop({ timeoutMs: 10_000 }) // finish what the lanes hold
  await source.close() // ack what finished; RabbitMQ requeues the rest
  console.log(JSON.stringify({ pid: process.pid, completed: report.completed }))
})

await queue.consume(source) // pulls as fast as the lanes take messages, until SIGTERM
