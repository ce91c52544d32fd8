// examples/sources/nats/consumer.js — start one per process or machine; they share the work
import { createQueue } from 'conveyor-lanes'
import { natsSource } from 'conveyor-lanes/sources/nats'

const queue = createQueue({ handler: new URL('./handler.js', import.meta.url), threads: 'auto' })
await queue.start()

const source = natsSource({
  servers: process.env.NATS_URL ?? '127.0.0.1:4222',
  stream: process.env.STREAM ?? 'ORDERS', // nats stream add ORDERS --subjects 'orders.>'
  consumer: 'order-workers', // every process on this durable consumer shares its messages
  createConsumer: true, // creates it (and a stream ORDERS_DEAD for ORDERS.dead) if missing
  maxInFlight: 32,
  maxDeliveries: 5,
})
source.on('dead-letter', ({ id, error }) => console.error(`dead letter ${id}: ${error.message}`))
source.on('disconnect', ({ error }) => console.error(`NATS: ${error.message}, retrying`))

process.once('SIGTERM', async () => {
  await queue.stop({ timeoutMs: 10_000 }) // lets the lanes finish what they hold
  await source.close() // acks what finished, hands the rest back to JetStream
  console.log(JSON.stringify({ completed: queue.stats().completed }))
})
console.log('consuming')
await queue.consume(source) // pulls as fast as the lanes take messages, until stop()
