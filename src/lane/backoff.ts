import type { RetryPolicy } from './protocol.js'

/**
 * The delay before the attempt after `attempt` failed: `backoffMs` doubling per attempt, capped
 * at `maxBackoffMs`, and with jitter spread over [½, 1] of itself ("equal jitter": never less
 * than half, so a retry storm still backs off). `random` is Math.random in production. Used by
 * workers between handler attempts and by broker sources between reconnects.
 */
export function retryDelay(
  policy: Pick<RetryPolicy, 'backoffMs' | 'maxBackoffMs' | 'jitter'>,
  attempt: number,
  random: () => number,
): number {
  const base = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (attempt - 1))
  return policy.jitter ? base / 2 + (random() * base) / 2 : base
}
