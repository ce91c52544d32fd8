import { countOption, functionOption, invalid, optionsObject } from '../check-options.js'
import { describeValue } from '../errors.js'
import type { SourceOptions } from './source.js'

export interface ResolvedSourceOptions<T> {
  maxInFlight: number
  maxDeliveries: number
  decode: (payload: Buffer) => T
  key: ((value: T) => string | number | undefined) | undefined
  ackIntervalMs: number
  ackBatch: number
  closeTimeoutMs: number
  reconnect: { backoffMs: number; maxBackoffMs: number; jitter: true }
}

/** The keys of SourceOptions, for a broker source's own list of known options. */
export const SOURCE_OPTION_KEYS = [
  'maxInFlight',
  'maxDeliveries',
  'decode',
  'key',
  'ackIntervalMs',
  'ackBatch',
  'closeTimeoutMs',
  'reconnect',
] as const

const decodeJson = (payload: Buffer): never => JSON.parse(payload.toString('utf8')) as never

function msOption(label: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2 ** 31 - 1) {
    throw invalid(
      label,
      `${name} must be a number of milliseconds ≥ 0, got ${describeValue(value)}`,
    )
  }
  return value
}

/**
 * Checks the options every source shares; `label` names the source in errors
 * ("redisSource()"), `known` lists all the keys it takes (its own and SOURCE_OPTION_KEYS).
 */
export function resolveSourceOptions<T>(
  label: string,
  options: unknown,
  known: readonly string[],
): { shared: ResolvedSourceOptions<T>; all: Record<string, unknown> } {
  const all = optionsObject(label, options, known) as SourceOptions<T> & Record<string, unknown>
  const reconnect = optionsObject(`${label} reconnect`, all.reconnect, [
    'backoffMs',
    'maxBackoffMs',
  ])
  const backoffMs = msOption(label, 'reconnect.backoffMs', reconnect.backoffMs, 100)
  const maxBackoffMs = msOption(label, 'reconnect.maxBackoffMs', reconnect.maxBackoffMs, 5000)
  if (maxBackoffMs < backoffMs) {
    throw invalid(
      label,
      `reconnect.maxBackoffMs (${maxBackoffMs}) is below backoffMs (${backoffMs})`,
    )
  }
  return {
    all,
    shared: {
      maxInFlight: countOption(label, 'maxInFlight', all.maxInFlight, 64),
      maxDeliveries: countOption(label, 'maxDeliveries', all.maxDeliveries, 5),
      decode: functionOption<(payload: Buffer) => T>(label, 'decode', all.decode) ?? decodeJson,
      key: functionOption(label, 'key', all.key),
      ackIntervalMs: msOption(label, 'ackIntervalMs', all.ackIntervalMs, 5),
      ackBatch: countOption(label, 'ackBatch', all.ackBatch, 256),
      closeTimeoutMs: msOption(label, 'closeTimeoutMs', all.closeTimeoutMs, 5000),
      reconnect: { backoffMs, maxBackoffMs, jitter: true },
    },
  }
}
