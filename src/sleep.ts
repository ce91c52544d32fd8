import { setTimeout as delay } from 'node:timers/promises'

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects): a retry backoff in a
 * worker, a producer's idle wait, a source's reconnect backoff.
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  // An abort rejects timers/promises' delay with an AbortError: here it only ends the wait.
  return delay(ms, undefined, { signal }).catch(() => {})
}
