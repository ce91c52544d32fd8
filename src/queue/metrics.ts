import { createHistogram, type RecordableHistogram } from 'node:perf_hooks'
import { ConveyorError, describeValue } from '../errors.js'
import { SAMPLE_EVERY } from '../lane/sample-mailbox.js'
import type { EventFence } from './events.js'
import type { SampleSink } from './lane-samples.js'

/**
 * One histogram's summary. Every field is in milliseconds except `count`; all are 0 while
 * `count` is 0. The histograms keep whole nanoseconds to 3 significant digits (HdrHistogram,
 * `perf_hooks.createHistogram()`): values are exact to 0.1%, a time under 1 ns counts as 1 ns.
 */
export interface DurationSummary {
  /** Samples recorded. */
  count: number
  /** Smallest sample, ms. */
  min: number
  /** Largest sample, ms. */
  max: number
  /** Mean, ms. */
  mean: number
  /** Standard deviation, ms. */
  stddev: number
  /** Median, ms. */
  p50: number
  /** 90th percentile, ms. */
  p90: number
  /** 99th percentile, ms. */
  p99: number
}

/**
 * What `queue.metrics()` returns: timings of sampled messages since the queue started, or
 * since the last `metrics({ reset: true })`. A message is sampled when it is written to its
 * lane, one in `sampleEvery` per lane (fewer on a busy lane); its sample is recorded once its worker finished it,
 * whatever the outcome (acked, a run() result, dead-lettered). Messages left unprocessed at
 * stop() are not recorded, nor counted as dropped.
 */
export interface QueueMetrics {
  /**
   * One message in `sampleEvery` per lane is measured (16), while the lane handles fewer than
   * ~160 k messages/s; a busier lane is sampled about once per 0.1 ms (down to one message in
   * 1024), so that sampling stays a fraction of a percent of the main thread's work.
   */
  sampleEvery: number
  /** How long this window has been collecting, ms: since start() finished or the last reset. */
  windowMs: number
  /**
   * Sampled messages that yielded no timings: their worker died while handling them (or,
   * rarely, the main thread fell so far behind a lane that their timings were overwritten).
   */
  dropped: number
  /** push → done: from writing the message into its lane to the main thread seeing it finished. */
  latency: DurationSummary
  /** Queue wait: from writing the message into its lane to its handler starting on it. */
  wait: DurationSummary
  /**
   * Service time: from the worker starting on the message to finishing it, every attempt and
   * retry backoff included (how long the message held its lane).
   */
  service: DurationSummary
}

export interface MetricsOptions {
  /** Start a new window after reading this one: clears the histograms and `dropped`. */
  reset?: boolean
}

/** One sampled message's timings, in milliseconds, as `queue.onSample()` observers get them. */
export interface MessageSample {
  /** The lane (worker thread) that handled it. */
  lane: number
  /** push → done, ms (see QueueMetrics.latency). */
  latencyMs: number
  /** Queue wait, ms (see QueueMetrics.wait). */
  waitMs: number
  /** Service time, ms (see QueueMetrics.service). */
  serviceMs: number
}

export type SampleObserver = (sample: MessageSample) => void

const NS_PER_MS = 1e6

/**
 * The queue's timing histograms (perf_hooks, as Piscina keeps runTime and waitTime), fed by
 * every lane's samples, with windows (reset) and observers (onSample). Observers are user code:
 * they run in the queue's event fence, so one that throws is reported and changes nothing.
 */
export class Measurements implements SampleSink {
  private readonly latency: RecordableHistogram = createHistogram()
  private readonly wait: RecordableHistogram = createHistogram()
  private readonly service: RecordableHistogram = createHistogram()
  private dropped = 0
  /** performance.now() when this window began; 0 before start(). */
  private windowStart = 0
  private observers: SampleObserver[] = []

  constructor(private readonly fence: EventFence) {}

  sampled(lane: number, latencyMs: number, waitMs: number, serviceMs: number): void {
    this.latency.record(toNs(latencyMs))
    this.wait.record(toNs(waitMs))
    this.service.record(toNs(serviceMs))
    if (this.observers.length === 0) return
    const sample: MessageSample = { lane, latencyMs, waitMs, serviceMs }
    // A copy: an observer that unsubscribes (itself or another) does not skip anyone now.
    for (const observer of [...this.observers]) this.fence.call1(observer, sample)
  }

  sampleDropped(): void {
    this.dropped++
  }

  /** Clears everything and starts a window now (start() calls it, so does a reset). */
  reset(): void {
    this.latency.reset()
    this.wait.reset()
    this.service.reset()
    this.dropped = 0
    this.windowStart = performance.now()
  }

  snapshot(options: MetricsOptions | undefined): QueueMetrics {
    const reset = resetOption(options)
    const metrics: QueueMetrics = {
      sampleEvery: SAMPLE_EVERY,
      windowMs: this.windowStart === 0 ? 0 : performance.now() - this.windowStart,
      dropped: this.dropped,
      latency: summarize(this.latency),
      wait: summarize(this.wait),
      service: summarize(this.service),
    }
    if (reset) this.reset()
    return metrics
  }

  subscribe(observer: SampleObserver): () => void {
    if (typeof observer !== 'function') {
      throw new ConveyorError(
        'INVALID_OPTION',
        `onSample(observer) takes a function (sample) => void, got ${describeValue(observer)}`,
      )
    }
    // A fresh entry per subscription: subscribing one function twice means two calls.
    const entry: SampleObserver = (sample) => observer(sample)
    this.observers = [...this.observers, entry]
    return () => {
      this.observers = this.observers.filter((o) => o !== entry)
    }
  }
}

function resetOption(options: unknown): boolean {
  if (options === undefined) return false
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConveyorError(
      'INVALID_OPTION',
      `metrics(options) takes an object like { reset: true }, got ${describeValue(options)}`,
    )
  }
  const { reset } = options as MetricsOptions
  if (reset !== undefined && typeof reset !== 'boolean') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `metrics(): reset must be true or false, got ${describeValue(reset)}`,
    )
  }
  return reset === true
}

/** Milliseconds as the histograms' unit: whole nanoseconds, at least 1. */
function toNs(ms: number): number {
  const ns = Math.round(ms * NS_PER_MS)
  // Under 1 ns (or not a time at all, never expected): the floor, rather than a throw that
  // would unwind a lane's drain.
  return ns >= 1 && ns <= Number.MAX_SAFE_INTEGER ? ns : 1
}

export function summarize(h: RecordableHistogram): DurationSummary {
  if (h.count === 0) return { count: 0, min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 }
  return {
    count: h.count,
    min: h.min / NS_PER_MS,
    max: h.max / NS_PER_MS,
    mean: h.mean / NS_PER_MS,
    stddev: h.stddev / NS_PER_MS,
    p50: h.percentile(50) / NS_PER_MS,
    p90: h.percentile(90) / NS_PER_MS,
    p99: h.percentile(99) / NS_PER_MS,
  }
}
