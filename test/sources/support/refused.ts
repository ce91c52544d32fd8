/**
 * For the tests of what ends a broker source (a configuration its broker refuses): the error a
 * promise rejects with, within a bound generous enough that only a hang misses it.
 */

const HANG_MS = 30_000

/**
 * What `promise` rejects with. Throws when it resolves instead, or is still pending after
 * `timeoutMs`: a source that hangs (reconnecting forever) fails the test, it never passes.
 */
export async function rejection(
  promise: Promise<unknown>,
  timeoutMs = HANG_MS,
): Promise<Error & { code?: string }> {
  let timer: NodeJS.Timeout | undefined
  const outcome = await Promise.race([
    promise.then(
      () => ({ resolved: true as const }),
      (error: Error) => ({ error }),
    ),
    new Promise<{ pending: true }>((resolve) => {
      timer = setTimeout(() => resolve({ pending: true }), timeoutMs)
    }),
  ])
  clearTimeout(timer)
  if ('error' in outcome) return outcome.error
  throw new Error(
    'resolved' in outcome
      ? 'it resolved instead of rejecting'
      : `it did not settle within ${timeoutMs} ms (a hang)`,
  )
}
