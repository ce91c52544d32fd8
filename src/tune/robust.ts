/**
 * Small robust statistics for the thread controller: medians rather than means, because a
 * window can be an outlier (a GC pause, another process on the box, a lull in the input) and
 * one outlier must not decide a step.
 */

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty list')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * A robust standard deviation of values centred on 0: 1.4826 × their median absolute value,
 * which equals σ for gaussian noise and ignores a few wild values. NaN for an empty list.
 */
export function robustSigma(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  return 1.4826 * median(values.map(Math.abs))
}
