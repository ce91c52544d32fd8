// examples/sources/nats/handler.js — runs in every worker thread of every process
import { createHash } from 'node:crypto'
import { defineHandler } from 'conveyor-lanes/worker'

export default defineHandler({
  handle(order) {
    // CPU-bound work: what the lanes spread over the cores
    let digest = String(order.id)
    for (let i = 0; i < 2000; i++) digest = createHash('sha256').update(digest).digest('hex')
    return digest
  },
})
