import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Counter, Registry, register } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { registerQueueMetrics } from '../../dist/src/metrics/index.js'
import { fixture, makeQueue, stopQueuesAfterEach, thrown } from '../queue/helpers.js'

stopQueuesAfterEach()

/** A scrape's samples: `name{labels}` → value, as the exposition text writes them. */
async function scrape(registry: Registry): Promise<{ text: string; values: Map<string, number> }> {
  const text = await registry.metrics()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const at = line.lastIndexOf(' ')
    values.set(line.slice(0, at), Number(line.slice(at + 1)))
  }
  return { text, values }
}

function seriesValue(values: Map<string, number>, key: string): number {
  const value = values.get(key)
  if (value === undefined) throw new Error(`no ${key} in the scrape: ${[...values.keys()]}`)
  return value
}

describe('registerQueueMetrics (prom-client)', () => {
  it('a scrape shows the counters moving, the gauges per lane, and real histograms', async () => {
    const registry = new Registry()
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 2 })
    registerQueueMetrics(queue, { registry, labels: { queue: 'orders' } })
    await queue.start()
    for (let i = 0; i < 320; i++) await queue.push({ spinUs: 50 })
    await queue.onIdle()
    const first = await scrape(registry)
    const l = '{queue="orders"}'
    expect(seriesValue(first.values, `conveyor_messages_pushed_total${l}`)).toBe(320)
    expect(seriesValue(first.values, `conveyor_messages_completed_total${l}`)).toBe(320)
    expect(seriesValue(first.values, `conveyor_threads${l}`)).toBe(2)
    expect(first.text).toContain('# TYPE conveyor_messages_pushed_total counter')
    expect(first.text).toContain('# TYPE conveyor_messages_in_flight gauge')
    expect(first.text).toContain('# TYPE conveyor_service_seconds histogram')
    for (const lane of ['0', '1']) {
      const busy = seriesValue(
        first.values,
        `conveyor_lane_busy_ratio{queue="orders",lane="${lane}"}`,
      )
      expect(busy).toBeGreaterThan(0)
      expect(busy).toBeLessThanOrEqual(1)
      expect(
        seriesValue(
          first.values,
          `conveyor_lane_busy_seconds_total{queue="orders",lane="${lane}"}`,
        ),
      ).toBeGreaterThan(0)
    }
    // The histograms saw every sample since registration: the queue's own count.
    const sampled = queue.metrics().service.count
    expect(sampled).toBeGreaterThanOrEqual(320 / 16 - 2)
    for (const h of ['latency_seconds', 'queue_wait_seconds', 'service_seconds']) {
      expect(seriesValue(first.values, `conveyor_${h}_count${l}`)).toBe(sampled)
      expect(seriesValue(first.values, `conveyor_${h}_bucket{le="+Inf",queue="orders"}`)).toBe(
        sampled,
      )
      expect(seriesValue(first.values, `conveyor_${h}_sum${l}`)).toBeGreaterThan(0)
    }
    // Each message busy-waited 50 µs: no service time falls in the 10 µs bucket.
    expect(
      seriesValue(first.values, `conveyor_service_seconds_bucket{le="0.00001",queue="orders"}`),
    ).toBe(0)

    // Scrape while messages are in flight, then once they are done.
    const producing = (async () => {
      for (let i = 0; i < 640; i++) await queue.push({ spinUs: 50 })
    })()
    const during = await scrape(registry)
    await producing
    await queue.onIdle()
    const last = await scrape(registry)
    const pushed = (s: typeof first) => seriesValue(s.values, `conveyor_messages_pushed_total${l}`)
    expect(pushed(during)).toBeGreaterThanOrEqual(320)
    expect(pushed(during)).toBeLessThanOrEqual(960)
    expect(pushed(last)).toBe(960)
    expect(seriesValue(last.values, `conveyor_messages_completed_total${l}`)).toBe(960)
    expect(seriesValue(last.values, `conveyor_service_seconds_count${l}`)).toBeGreaterThan(sampled)
    expect(seriesValue(last.values, `conveyor_messages_in_flight${l}`)).toBe(0)
  })

  it('counts failures and dead letters', async () => {
    const registry = new Registry()
    const queue = makeQueue({
      handler: fixture('timed.mjs'),
      threads: 1,
      retry: { attempts: 2, backoffMs: 1 },
    })
    queue.on('dead-letter', () => {})
    registerQueueMetrics(queue, { registry, prefix: 'app_' })
    await queue.start()
    await queue.push({ fail: true })
    await queue.push({})
    await queue.onIdle()
    const { values } = await scrape(registry)
    expect(seriesValue(values, 'app_handler_failures_total')).toBe(2)
    expect(seriesValue(values, 'app_messages_dead_lettered_total')).toBe(1)
    expect(seriesValue(values, 'app_messages_completed_total')).toBe(1)
    expect(seriesValue(values, 'app_messages_rejected_total')).toBe(0)
    expect(seriesValue(values, 'app_messages_aborted_total')).toBe(0)
  })

  it('unregister() takes the metrics out of the registry and stops observing', async () => {
    const registry = new Registry()
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    const registration = registerQueueMetrics(queue, { registry })
    expect(registration.names).toContain('conveyor_service_seconds')
    await queue.start()
    for (let i = 0; i < 32; i++) await queue.push({})
    await queue.onIdle()
    expect((await registry.metrics()).match(/^conveyor_/gm)?.length).toBeGreaterThan(10)
    registration.unregister()
    registration.unregister()
    expect((await registry.metrics()).trim()).toBe('')
    for (const name of registration.names) expect(registry.getSingleMetric(name)).toBeUndefined()
    // Samples keep coming; nobody observes them any more.
    for (let i = 0; i < 32; i++) await queue.push({})
    await queue.onIdle()
    expect((await registry.metrics()).trim()).toBe('')
    // And the names are free again.
    registerQueueMetrics(queue, { registry }).unregister()
  })

  it('shares one set of metrics among queues told apart by their labels', async () => {
    const registry = new Registry()
    const a = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    const b = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    const ra = registerQueueMetrics(a, { registry, labels: { queue: 'a' } })
    const rb = registerQueueMetrics(b, { registry, labels: { queue: 'b' } })
    expect(
      thrown(() => registerQueueMetrics(b, { registry, labels: { queue: 'a' } })),
    ).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/its own labels/) })
    expect(thrown(() => registerQueueMetrics(b, { registry, labels: { app: 'b' } }))).toMatchObject(
      {
        code: 'INVALID_OPTION',
        message: expect.stringMatching(/same label names/),
      },
    )
    expect(
      thrown(() => registerQueueMetrics(b, { registry, labels: { queue: 'c' }, buckets: [1] })),
    ).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringMatching(/same buckets/) })
    await Promise.all([a.start(), b.start()])
    for (let i = 0; i < 16; i++) await a.push({})
    for (let i = 0; i < 48; i++) await b.push({})
    await Promise.all([a.onIdle(), b.onIdle()])
    let { values } = await scrape(registry)
    expect(seriesValue(values, 'conveyor_messages_pushed_total{queue="a"}')).toBe(16)
    expect(seriesValue(values, 'conveyor_messages_pushed_total{queue="b"}')).toBe(48)
    expect(seriesValue(values, 'conveyor_service_seconds_count{queue="a"}')).toBe(1)
    expect(seriesValue(values, 'conveyor_service_seconds_count{queue="b"}')).toBe(3)
    expect(seriesValue(values, 'conveyor_lane_busy_ratio{queue="b",lane="0"}')).toBeGreaterThan(0)
    ra.unregister()
    ;({ values } = await scrape(registry))
    expect(values.has('conveyor_messages_pushed_total{queue="a"}')).toBe(false)
    expect(values.has('conveyor_lane_busy_ratio{queue="a",lane="0"}')).toBe(false)
    expect(values.has('conveyor_service_seconds_count{queue="a"}')).toBe(false)
    expect(seriesValue(values, 'conveyor_service_seconds_count{queue="b"}')).toBe(3)
    expect(seriesValue(values, 'conveyor_messages_pushed_total{queue="b"}')).toBe(48)
    rb.unregister()
    expect((await registry.metrics()).trim()).toBe('')
  })

  it("registers in prom-client's default registry unless given one", async () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    const registration = registerQueueMetrics(queue)
    try {
      expect(register.getSingleMetric('conveyor_messages_pushed_total')).toBeDefined()
    } finally {
      registration.unregister()
    }
    expect(register.getSingleMetric('conveyor_messages_pushed_total')).toBeUndefined()
  })

  it('checks its options: INVALID_OPTION, saying what to change', () => {
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    const registry = new Registry()
    const cases: [unknown, unknown, RegExp][] = [
      [{}, undefined, /a queue made by createQueue/],
      [queue, 'fast', /options must be an object/],
      [queue, { registry: {} }, /registry must be a prom-client Registry.*registerMetric/],
      [queue, { registry, prefix: '9lives_' }, /prefix must be letters/],
      [queue, { registry, prefix: 'my-app_' }, /prefix must be letters/],
      [queue, { registry, labels: ['queue'] }, /labels must be an object/],
      [
        queue,
        { registry, labels: { 'queue-name': 'a' } },
        /labels.queue-name is not a Prometheus label name/,
      ],
      [
        queue,
        { registry, labels: { __name: 'a' } },
        /labels.__name is not a Prometheus label name/,
      ],
      [queue, { registry, labels: { lane: 'a' } }, /labels.lane is set by the adapter/],
      [queue, { registry, labels: { le: 'a' } }, /labels.le is set by the adapter/],
      [queue, { registry, labels: { queue: 7 } }, /labels.queue must be a string, got 7/],
      [queue, { registry, buckets: [] }, /buckets must be a non-empty array/],
      [queue, { registry, buckets: [0.1, 0.01] }, /buckets\[1\] is 0.01/],
      [queue, { registry, buckets: [0, 1] }, /buckets\[0\] is 0/],
    ]
    for (const [q, options, message] of cases) {
      const err = thrown(() => registerQueueMetrics(q as never, options as never))
      expect(err, String(message)).toMatchObject({ code: 'INVALID_OPTION' })
      expect(err.message).toMatch(message)
    }
    expect((registry.getMetricsAsArray() as unknown[]).length).toBe(0)
  })

  it('leaves a registry alone when one of its names is taken from elsewhere', async () => {
    const registry = new Registry()
    new Counter({ name: 'conveyor_threads', help: 'not ours', registers: [registry] })
    const queue = makeQueue({ handler: fixture('timed.mjs'), threads: 1 })
    expect(thrown(() => registerQueueMetrics(queue, { registry }))).toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringMatching(/already has conveyor_threads from elsewhere.*another prefix/),
    })
    expect(registry.getMetricsAsArray().map((m) => m.name)).toEqual(['conveyor_threads'])
    registerQueueMetrics(queue, { registry, prefix: 'orders_' }).unregister()
  })

  it('is not loaded by importing conveyor-lanes: only conveyor-lanes/metrics loads prom-client', () => {
    const dist = (path: string) =>
      JSON.stringify(fileURLToPath(new URL(`../../dist/src/${path}`, import.meta.url)))
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module'
         const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('prom-client'))
         const { createQueue } = await import(${dist('index.js')})
         const q = createQueue({ handler: ${JSON.stringify(fixture('timed.mjs'))}, threads: 1 })
         await q.start()
         await q.run({})
         q.metrics()
         await q.stop()
         const main = loaded()
         await import(${dist('metrics/index.js')})
         console.log(JSON.stringify({ main, metrics: loaded() }))`,
      ],
      { encoding: 'utf8' },
    )
    expect(probe.status, probe.stderr).toBe(0)
    expect(JSON.parse(probe.stdout)).toEqual({ main: false, metrics: true })
  })
})
