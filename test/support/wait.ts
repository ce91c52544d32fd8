export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface WaitOptions {
  /** @default 60_000 */
  timeoutMs?: number
  /** @default 20 */
  pollMs?: number
  /** A condition that throws (a consumer not created yet) counts as "not yet". @default false */
  throwsMeanNotYet?: boolean
}

/**
 * Polls `condition` until it holds; throws, naming `what` (and the condition's last error as
 * the cause), after `timeoutMs`. Counts and states, never durations, are what tests wait on.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  options: WaitOptions = {},
): Promise<void> {
  const { timeoutMs = 60_000, pollMs = 20, throwsMeanNotYet = false } = options
  const until = performance.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      if (await condition()) return
    } catch (err) {
      if (!throwsMeanNotYet) throw err
      last = err
    }
    if (performance.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: last })
    }
    await sleep(pollMs)
  }
}
