// A handler module as a user writes it; queue.types.ts infers the queue's types from it.
import { defineHandler } from '../../dist/src/worker.js'

export interface Order {
  id: number
  email: string
}

export default defineHandler({
  async handle(order: Order, ctx) {
    return `${order.id}:${order.email}:${ctx.attempt}`
  },
})
