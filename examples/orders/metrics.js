// examples/orders/metrics.js — node examples/orders/metrics.js (after: npm install prom-client)
import { once } from 'node:events'
import { createServer } from 'node:http'
import { createQueue } from 'conveyor-lanes'
import { registerQueueMetrics } from 'conveyor-lanes/metrics'
import { register } from 'prom-client'

const queue = createQueue({ handler: new URL('./handler.js', import.meta.url), threads: 2 })
const metrics = registerQueueMetrics(queue, { labels: { queue: 'orders' } })
await queue.start()

// What Prometheus scrapes.
const server = createServer(async (_req, res) => {
  res.setHeader('Content-Type', register.contentType)
  res.end(await register.metrics())
})
server.listen(Number(process.env.METRICS_PORT ?? 9464))
await once(server, 'listening')

for (let id = 1; id <= 1000; id++) await queue.push({ id, email: `user${id}@example.com` })
await queue.onIdle()

const { service, wait } = queue.metrics() // milliseconds: { count, min, max, mean, p50, p90, p99… }
const scraped = await (await fetch(`http://localhost:${server.address().port}/metrics`)).text()
metrics.unregister()
server.close()
await queue.stop()
console.log(
  JSON.stringify({
    sampled: service.count === wait.count && service.count > 0,
    completed: scraped.includes('conveyor_messages_completed_total{queue="orders"} 1000'),
    histogram: scraped.includes(`conveyor_service_seconds_count{queue="orders"} ${service.count}`),
  }),
)
