// examples/orders/main.js — node examples/orders/main.js
import { createQueue } from 'conveyor-lanes'

const queue = createQueue({
  handler: new URL('./handler.js', import.meta.url),
  threads: 'auto', // or a number
  codec: 'json', // 'string' | 'bytes' | 'v8' | 'msgpack' | { module }
  ordering: 'none', // 'key': same key → same lane, in order
  retry: { attempts: 3, backoffMs: 50 },
})
queue.on('dead-letter', ({ message, error }) => console.error('gave up on', message, error))
await queue.start()

let acked = 0
await queue.push({ id: 1, email: 'a@example.com' }, { ack: () => acked++ })
const digest = await queue.run({ id: 2, email: 'b@example.com' }) // the handler's result

async function* orders() {
  for (let id = 3; id <= 1000; id++) yield { id, email: `user${id}@example.com` }
}
await queue.consume(orders()) // pulls at the rate workers take messages
await queue.onIdle() // every message so far is settled

const { completed, latencyMs } = queue.stats() // counts, rates, latency, per lane
const report = await queue.stop({ timeoutMs: 10_000 })
// report.unprocessed: messages accepted but not handled before the timeout, decoded
console.log(
  JSON.stringify({
    digest,
    acked,
    completed,
    p50: latencyMs.p50 >= 0,
    unprocessed: report.unprocessed.length,
  }),
)
