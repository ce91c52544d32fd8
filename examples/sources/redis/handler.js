// examples/sources/redis/handler.js — runs in every worker thread of every consumer process
import { createHash } from 'node:crypto'
import { defineHandler } from 'conveyor-lanes/worker'

export default defineHandler({
  handle(order) {
    // CPU-heavy work here; a throw retries in place (queue retry), then goes back to Redis
    return createHash('sha256').update(`${order.id}:${order.email}`).digest('hex')
  },
})
