// Type tests, checked by `tsc -p test/types` (test/types.test.ts): what must compile does,
// and each @ts-expect-error line must be an error, or tsc fails on the unused directive.
import { expectTypeOf } from 'vitest'
import {
  type ConsumeResult,
  type CpuCeiling,
  cpuCeiling,
  createQueue,
  type DeadLetter,
  type Envelope,
  handlerUrl,
  type Queue,
  runProducers,
  type StopReport,
} from '../../dist/src/index.js'
import type { HandlerContext } from '../../dist/src/worker.js'
import type { Order } from './handler.types.js'

declare const order: Order

// Given types: the Piscina<T, R> convention.
const given = createQueue<Order, string>({ handler: new URL('./handler.js', import.meta.url) })
expectTypeOf(given).toEqualTypeOf<Queue<Order, string>>()
expectTypeOf(given.run(order)).toEqualTypeOf<Promise<string>>()
void given.push(order, { key: order.id, ack: () => {}, nack: (error: Error) => error })
// @ts-expect-error a message of the wrong type
void given.push({ id: 'x' })
// @ts-expect-error run() of the wrong type
void given.run(42)
// @ts-expect-error a key must be a string or a number
void given.push(order, { key: {} })
// @ts-expect-error ack takes no callback of another shape
void given.push(order, { ack: 42 })

// pushMany(): messages of In; ack and nack are told the index; nack gets the message as In.
void given.pushMany([order, order], {
  key: (message, index) => {
    expectTypeOf(message).toEqualTypeOf<Order>()
    expectTypeOf(index).toEqualTypeOf<number>()
    return message.id
  },
  ack: (index) => expectTypeOf(index).toEqualTypeOf<number>(),
  nack: (error, index, message) => {
    expectTypeOf(error).toEqualTypeOf<Error>()
    expectTypeOf(index).toEqualTypeOf<number>()
    expectTypeOf(message).toEqualTypeOf<Order>()
  },
  signal: AbortSignal.timeout(1000),
})
// @ts-expect-error pushMany() of the wrong type
void given.pushMany([order, 42])
// @ts-expect-error a key function returns a string or a number
void given.pushMany([order], { key: () => ({}) })
// push()'s nack gets the message; signals on push and run.
void given.push(order, {
  nack: (_error, message) => expectTypeOf(message).toEqualTypeOf<Order>(),
  signal: new AbortController().signal,
})
void given.run(order, { signal: new AbortController().signal })
// @ts-expect-error a signal is an AbortSignal
void given.run(order, { signal: new AbortController() })

given.on('dead-letter', (letter) => {
  expectTypeOf(letter).toEqualTypeOf<DeadLetter<Order>>()
  expectTypeOf(letter.message).toEqualTypeOf<Order>()
})
given.on('failed', (error, message, attempt) => {
  expectTypeOf(error).toEqualTypeOf<Error>()
  expectTypeOf(message).toEqualTypeOf<Order>()
  expectTypeOf(attempt).toEqualTypeOf<number>()
})
expectTypeOf(given.stop()).toEqualTypeOf<Promise<StopReport<Order>>>()
declare const report: StopReport<Order>
expectTypeOf(report.unprocessed).toEqualTypeOf<Order[]>()

// consume(): plain items of In, or envelopes of In.
async function* orders(): AsyncGenerator<Order> {
  yield order
}
async function* envelopes(): AsyncGenerator<Envelope<Order>> {
  yield { value: order, key: 1, ack: () => {} }
}
expectTypeOf(given.consume(orders())).toEqualTypeOf<Promise<ConsumeResult<Order>>>()
void given.consume(envelopes(), { envelopes: true })
// @ts-expect-error envelopes without `envelopes: true`
void given.consume(envelopes())
// @ts-expect-error items of the wrong type
void given.consume([1, 2, 3])

// Inferred from the handler module's own types: write them once.
const inferred = createQueue({
  handler: handlerUrl<typeof import('./handler.types.js')>('./handler.types.js', import.meta.url),
})
expectTypeOf(inferred).toEqualTypeOf<Queue<Order, string>>()
// @ts-expect-error the handler takes Orders
void inferred.push('not an order')

// Without types, anything goes in and unknown comes out.
const loose = createQueue({ handler: './handler.js' })
expectTypeOf(loose).toEqualTypeOf<Queue<unknown, unknown>>()
void loose.push(42)
expectTypeOf(loose.run('x')).toEqualTypeOf<Promise<unknown>>()

// runProducers produces In.
void runProducers(given, () => ({ produce: () => order }))
// @ts-expect-error producers of the wrong type
void runProducers(given, () => ({ produce: () => 'x' }))

// The handler side.
expectTypeOf<HandlerContext['attempt']>().toEqualTypeOf<number>()
expectTypeOf<HandlerContext['signal']>().toEqualTypeOf<AbortSignal>()
expectTypeOf<HandlerContext['aborted']>().toEqualTypeOf<boolean>()

// Options are checked: a typo or a wrong type does not compile.
// @ts-expect-error unknown option
createQueue({ handler: './h.js', thread: 2 })
// @ts-expect-error threads: a number, 'auto' or { min, max }
createQueue({ handler: './h.js', threads: 'many' })
// @ts-expect-error codec names are checked
createQueue({ handler: './h.js', codec: 'yaml' })

// The CPUs this process may use, and where the number came from.
expectTypeOf(cpuCeiling()).toEqualTypeOf<CpuCeiling>()
expectTypeOf(cpuCeiling().cpus).toEqualTypeOf<number>()
