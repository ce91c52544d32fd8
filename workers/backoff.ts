export { retryDelay } from '../src/lane/backoff.js'

/**
 * A handler's own backoff(attempt, error), checked: it must return a finite number ≥ 0, or
 * throw. Either mistake is the handler's bug, reported as its failure (see attempt.ts).
 */
export function customDelay(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value
  throw new TypeError(
    `the handler's backoff() must return a finite number of ms ≥ 0, got ${String(value)}`,
  )
}
