import { pathToFileURL } from 'node:url'
import { Piscina } from 'piscina'
import { createQueue } from '../../queue/index.js'
import type { HandlerDefinition, HandlerFunction } from '../../worker.js'
import { makeOrder, type Order } from './orders.js'
import { Progress } from './progress.js'

export interface DemoOptions {
  /** Seconds of the main (conveyor) run. */
  durationS: number
  threads: number
  /** Handler module href; default the built-in order handler. */
  handler: string
  /** Producer rate limit, messages per second; 0 = as fast as the lanes take them. */
  rate: number
  /** Progress and table on stdout (false with --json). */
  verbose: boolean
}

export interface Measurement {
  name: string
  threads: number
  messages: number
  seconds: number
  msgPerS: number
  p50Ms: number
  p99Ms: number
}

export interface DemoSummary {
  handler: string
  threads: number
  conveyor: Measurement & { failed: number; deadLettered: number; unprocessed: number }
  piscina: Measurement
  inline: Measurement
  ratios: { overPiscina: number; overInline: number }
}

export const BUILTIN_HANDLER = new URL('./handler.js', import.meta.url).href
const PISCINA_WORKER = new URL('./piscina-worker.js', import.meta.url).href

/** A pool of distinct events, cycled: generating them must not be what the demo measures. */
const EVENTS: Order[] = Array.from({ length: 4096 }, (_, i) => makeOrder(i))
const event = (i: number): Order => {
  const e = EVENTS[i & 4095]
  e.id = i
  return e
}

export async function runDemo(options: DemoOptions): Promise<DemoSummary> {
  const conveyor = await runConveyor(options)
  const compareS = Math.max(1, Math.min(5, options.durationS / 5))
  if (options.verbose)
    console.log(
      `\nSame workload for ${compareS} s each through Piscina run() per message, and inline on one thread…`,
    )
  const piscina = await runPiscina(options, compareS)
  const inline = await runInline(options, compareS)
  return {
    handler: options.handler === BUILTIN_HANDLER ? 'built-in order handler' : options.handler,
    threads: options.threads,
    conveyor,
    piscina,
    inline,
    ratios: {
      overPiscina: conveyor.msgPerS / piscina.msgPerS,
      overInline: conveyor.msgPerS / inline.msgPerS,
    },
  }
}

async function runConveyor(options: DemoOptions): Promise<DemoSummary['conveyor']> {
  // 64 KiB lanes: plenty to keep workers fed, and a push → done latency of a few ms rather
  // than the time a full 1 MiB lane takes to drain.
  const queue = createQueue({
    handler: options.handler,
    threads: options.threads,
    codec: 'json',
    laneBytes: 65536,
  })
  await queue.start()
  const progress = new Progress(options.verbose, options.durationS)
  const started = performance.now()
  const deadline = started + options.durationS * 1000
  const ticker = setInterval(() => progress.update(queue.stats(), performance.now() - started), 250)
  let i = 0
  try {
    while (performance.now() < deadline) {
      if (options.rate > 0) {
        const due = ((performance.now() - started) / 1000) * options.rate
        if (i >= due) {
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(1, ((i - due) / options.rate) * 1000)),
          )
          continue
        }
      }
      await queue.push(event(i++))
      // A push that finds room resolves at once; let timers (progress) run now and then.
      if ((i & 1023) === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  } finally {
    clearInterval(ticker)
  }
  const report = await queue.stop({ timeoutMs: 10_000 })
  const stats = queue.stats()
  const seconds = (performance.now() - started) / 1000
  progress.finish(stats)
  return {
    name: 'conveyor',
    threads: options.threads,
    messages: report.completed,
    seconds,
    msgPerS: report.completed / seconds,
    p50Ms: stats.latencyMs.p50,
    p99Ms: stats.latencyMs.p99,
    failed: report.failed,
    deadLettered: report.deadLettered,
    unprocessed: report.unprocessed.length,
  }
}

async function runPiscina(options: DemoOptions, seconds: number): Promise<Measurement> {
  const pool = new Piscina({
    filename: PISCINA_WORKER,
    minThreads: options.threads,
    maxThreads: options.threads,
    workerData: { handler: options.handler },
  })
  const latencies: number[] = []
  let done = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  let i = 0
  // Keep every thread fed: a few tasks in flight per thread, as a Piscina user would.
  const lanes = Array.from({ length: options.threads * 4 }, async () => {
    while (performance.now() < deadline) {
      const t = performance.now()
      // A user handler may throw now and then: that message counts as handled (and failed),
      // as in the conveyor run, rather than ending the comparison.
      await pool.run(event(i++)).catch(() => {})
      latencies.push(performance.now() - t)
      done++
    }
  })
  await Promise.all(lanes)
  const elapsed = (performance.now() - started) / 1000
  await pool.destroy()
  return measurement('Piscina run() per message', options.threads, done, elapsed, latencies)
}

async function runInline(options: DemoOptions, seconds: number): Promise<Measurement> {
  const mod = (await import(options.handler)) as { default: HandlerDefinition | HandlerFunction }
  const definition: HandlerDefinition =
    typeof mod.default === 'function' ? { handle: mod.default } : mod.default
  const context = {
    lane: -1,
    threadId: 0,
    attempt: 1,
    signal: new AbortController().signal,
    aborted: false,
  }
  await definition.setup?.(context)
  const latencies: number[] = []
  const started = performance.now()
  const deadline = started + seconds * 1000
  let done = 0
  while (performance.now() < deadline) {
    const t = performance.now()
    // Encode and decode as the queue does, so the comparison carries the same codec work.
    try {
      await definition.handle(JSON.parse(JSON.stringify(event(done))), context)
    } catch {
      // counted as handled, like a failed message in the other runs
    }
    latencies.push(performance.now() - t)
    done++
  }
  await definition.teardown?.(context)
  return measurement('inline, one thread', 1, done, (performance.now() - started) / 1000, latencies)
}

function measurement(
  name: string,
  threads: number,
  messages: number,
  seconds: number,
  latencies: number[],
): Measurement {
  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  return {
    name,
    threads,
    messages,
    seconds,
    msgPerS: messages / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
  }
}

export function handlerHref(path: string): string {
  return pathToFileURL(path).href
}
