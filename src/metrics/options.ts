import type { Registry } from 'prom-client'
import { ConveyorError, describeValue } from '../errors.js'

/** Options of registerQueueMetrics(). */
export interface PrometheusOptions {
  /**
   * The prom-client registry to register the metrics in.
   * @default prom-client's global `register`
   */
  registry?: Registry
  /**
   * Prepended to every metric name: letters, digits, `_` and `:`, not starting with a digit.
   * @default 'conveyor_'
   */
  prefix?: string
  /**
   * Constant labels on every metric, e.g. `{ queue: 'orders' }` to tell two queues apart in
   * one registry. Names as Prometheus allows them, except `lane` and `le` (the adapter's own).
   */
  labels?: Readonly<Record<string, string>>
  /**
   * Upper bounds of the histograms' buckets, in seconds, ascending.
   * @default 10 µs to 10 s in 1-2.5-5 steps
   */
  buckets?: readonly number[]
}

export interface ResolvedPrometheusOptions {
  registry: Registry | undefined
  prefix: string
  labels: Record<string, string>
  buckets: number[]
}

/** 10 µs to 10 s: handlers here run from microseconds (the ring's own cost) to seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [
  1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1,
  2.5, 5, 10,
]

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
/** Labels the adapter sets itself: per-lane metrics and histogram buckets. */
const RESERVED_LABELS = ['lane', 'le']
const REGISTRY_METHODS = ['registerMetric', 'getSingleMetric', 'removeSingleMetric'] as const

/** INVALID_OPTION, its message naming the call. */
export function invalid(message: string): ConveyorError {
  return new ConveyorError('INVALID_OPTION', `registerQueueMetrics(): ${message}`)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

export function resolvePrometheusOptions(options: unknown): ResolvedPrometheusOptions {
  if (options === undefined) options = {}
  if (!isObject(options)) {
    throw invalid(
      `options must be an object like { registry, prefix, labels, buckets }, got ${describeValue(options)}`,
    )
  }
  return {
    registry: checkRegistry(options.registry),
    prefix: checkPrefix(options.prefix),
    labels: checkLabels(options.labels),
    buckets: checkBuckets(options.buckets),
  }
}

function checkRegistry(value: unknown): Registry | undefined {
  if (value === undefined) return undefined
  if (!isObject(value)) {
    throw invalid(`registry must be a prom-client Registry, got ${describeValue(value)}`)
  }
  const missing = REGISTRY_METHODS.filter((m) => typeof value[m] !== 'function')
  if (missing.length > 0) {
    throw invalid(
      `registry must be a prom-client Registry (new Registry() or register), got an object without ${missing.join(', ')}`,
    )
  }
  return value as unknown as Registry
}

function checkPrefix(value: unknown): string {
  if (value === undefined) return 'conveyor_'
  if (typeof value !== 'string' || (value !== '' && !METRIC_NAME.test(value))) {
    throw invalid(
      `prefix must be letters, digits, '_' or ':', not starting with a digit (like 'conveyor_'), got ${describeValue(value)}`,
    )
  }
  return value
}

function checkLabels(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (!isObject(value)) {
    throw invalid(`labels must be an object of label name → string, got ${describeValue(value)}`)
  }
  for (const [name, v] of Object.entries(value)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw invalid(
        `labels.${name} is not a Prometheus label name: use letters, digits and '_', not starting with a digit or '__'`,
      )
    }
    if (RESERVED_LABELS.includes(name)) {
      throw invalid(`labels.${name} is set by the adapter itself: give your label another name`)
    }
    if (typeof v !== 'string') {
      throw invalid(`labels.${name} must be a string, got ${describeValue(v)}`)
    }
  }
  return { ...(value as Record<string, string>) }
}

function checkBuckets(value: unknown): number[] {
  if (value === undefined) return [...DEFAULT_BUCKETS]
  const shape = 'a non-empty array of seconds > 0 in ascending order, like [0.001, 0.01, 0.1, 1]'
  if (!Array.isArray(value) || value.length === 0) {
    throw invalid(`buckets must be ${shape}, got ${describeValue(value)}`)
  }
  value.forEach((b: unknown, i) => {
    if (typeof b !== 'number' || !(b > 0) || !Number.isFinite(b) || (i > 0 && b <= value[i - 1])) {
      throw invalid(`buckets[${i}] is ${describeValue(b)}: buckets must be ${shape}`)
    }
  })
  return [...value]
}
