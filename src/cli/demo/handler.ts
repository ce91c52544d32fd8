import { defineHandler } from '../../worker.js'
import { type Order, processOrder } from './orders.js'

/** The demo's default handler module: one order at a time, on every worker. */
export default defineHandler<Order>({
  handle(order) {
    return processOrder(order)
  },
})
