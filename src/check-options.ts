import { ConveyorError, describeValue } from './errors.js'

/*
 * Checks for the options objects of the optional parts (executors, sources): each error names
 * its owner ("BulkExecutor", "redisSource") and says what to change.
 */

/** INVALID_OPTION, its message naming the executor. */
export function invalid(label: string, message: string): ConveyorError {
  return new ConveyorError('INVALID_OPTION', `${label}: ${message}`)
}

/** The options object, or `{}`; rejects keys the executor does not know (a typo is an error). */
export function optionsObject(
  label: string,
  options: unknown,
  known: readonly string[],
): Record<string, unknown> {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(
      label,
      `options must be an object like { ${known.join(', ')} }, got ${describeValue(options)}`,
    )
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw invalid(label, `unknown option '${key}'; the options are ${known.join(', ')}`)
    }
  }
  return options as Record<string, unknown>
}

/** setTimeout's ceiling: a longer delay fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

export function intervalOption(
  label: string,
  value: unknown,
  fallback: number,
  name = 'intervalMs',
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw invalid(
      label,
      `${name} must be a number of milliseconds > 0 and ≤ ${MAX_TIMER_MS}, got ${describeValue(value)}`,
    )
  }
  return value
}

export function countOption(label: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw invalid(label, `${name} must be an integer ≥ 1, got ${describeValue(value)}`)
  }
  return value
}

export function functionOption<F>(label: string, name: string, value: unknown): F | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') {
    throw invalid(label, `${name} must be a function, got ${describeValue(value)}`)
  }
  return value as F
}
