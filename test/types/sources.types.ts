// Type tests of the broker sources: what iterating one yields, and what consume() takes.
import { expectTypeOf } from 'vitest'
import { createQueue } from '../../dist/src/index.js'
import type { BrokerEnvelope, Source } from '../../dist/src/sources/index.js'
import { redisSource } from '../../dist/src/sources/redis/index.js'
import type { Order } from './handler.types.js'

const source = redisSource<Order>({ stream: 'orders', group: 'billing' })
expectTypeOf(source).toMatchTypeOf<Source<Order>>()

async function drive(): Promise<void> {
  for await (const envelope of source) {
    expectTypeOf(envelope).toEqualTypeOf<BrokerEnvelope<Order>>()
    expectTypeOf(envelope.value).toEqualTypeOf<Order>()
    expectTypeOf(envelope.id).toEqualTypeOf<string>()
    expectTypeOf(envelope.deliveries).toEqualTypeOf<number>()
    // Always there: no `!` needed where code drives the source itself.
    envelope.ack()
    envelope.nack(new Error('failed'))
    // @ts-expect-error nack takes the error
    envelope.nack()
  }
}
void drive

// A source of Orders feeds a queue of Orders, and no other.
const queue = createQueue<Order, string>({ handler: new URL('./handler.js', import.meta.url) })
void queue.consume(source)
const numbers = createQueue<number>({ handler: new URL('./handler.js', import.meta.url) })
// @ts-expect-error a source of Orders cannot feed a queue of numbers
void numbers.consume(source)
