// examples/orders/handler.js — runs in every worker thread
import { createHash } from 'node:crypto'
import { defineHandler } from 'conveyor-lanes/worker'

export default defineHandler({
  setup() {}, // (ctx) once per worker, before its first message
  handle(order) {
    // sync or async; what it returns goes to queue.run() callers
    return createHash('sha256').update(`${order.id}:${order.email}`).digest('hex')
  },
  onEvent() {}, // (event, ctx) what queue.broadcast(event) sends
  teardown() {}, // (ctx) once per worker, after its lane drained on stop()
})
