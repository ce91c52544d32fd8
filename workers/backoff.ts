import type { RetryPolicy } from '../src/lane/protocol.js'

/**
 * The delay before the attempt after `attempt` failed: `backoffMs` doubling per attempt, capped
 * at `maxBackoffMs`, and with jitter spread over [½, 1] of itself ("equal jitter": never less
 * than half, so a retry storm still backs off). `random` is Math.random in production.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, random: () => number): number {
  const base = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1))
  return policy.jitter ? base / 2 + (random() * base) / 2 : base
}

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
