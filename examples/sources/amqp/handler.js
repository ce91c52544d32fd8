// examples/sources/amqp/handler.js — runs in every worker thread of every consumer process
import { createHash } from 'node:crypto'
import { defineHandler } from 'conveyor-lanes/worker'

export default defineHandler({
  handle(order) {
    // CPU-bound work on one message; what it throws is retried, then handed back to RabbitMQ
    let digest = `${order.id}:${order.email}`
    for (let i = 0; i < 200; i++) digest = createHash('sha256').update(digest).digest('hex')
    return digest
  },
})
