/**
 * From a sweep's measurements to one setting, and the sentence that justifies it.
 *
 * Pure: no clock, no queue, no machine. `conveyor tune` feeds it medians across repeats; the
 * tests feed it made-up numbers (plateaus, noise, a saturated producer).
 *
 * The rule: among every configuration whose throughput is within `WITHIN_BEST` of the best
 * measured, take the fewest threads, then the smallest lanes. Fewer threads because each one
 * costs a core others could use (and a worker's memory) for, by definition, almost nothing;
 * smaller lanes because a full lane's backlog is time every message spends queued (push →
 * done latency), and memory. The threshold sits above the run-to-run noise of a median of
 * three on a quiet machine (1–2 %) and below what anyone would pay a core for.
 */

/** A configuration is "as good as the best" when its throughput is at least this share of it. */
export const WITHIN_BEST = 0.97

/**
 * Main-thread event-loop utilisation at or above which the producer is saturated: the main
 * thread is busy pushing (encoding, writing, settling) nearly all the time, so more workers
 * cannot be fed faster, and each one only takes CPU from it.
 */
export const PRODUCER_SATURATED = 0.9

/** What `recommend` needs of one configuration: medians across repeats. */
export interface MeasuredConfig {
  threads: number
  /** Ring bytes per lane. */
  laneBytes: number
  /** Messages finished per second. */
  throughput: number
  /** The main thread's event-loop utilisation while producing, 0..1. */
  mainThreadUtilisation: number
}

export interface Recommendation {
  threads: number
  laneBytes: number
  /** msg/s of the recommended configuration. */
  throughput: number
  /** Its throughput as a share of the best, 0..1 (1: it is the best). */
  ofBest: number
  /** The configuration with the highest throughput. */
  best: { threads: number; laneBytes: number; throughput: number }
  /**
   * The next larger thread count swept at the recommended lane size, and what it adds over the
   * recommendation as a share (0.01: +1 %; negative: it loses). Null when none was swept.
   */
  next: { threads: number; adds: number } | null
  /**
   * The fewest threads at the recommended lane size at which the main thread was saturated
   * (utilisation ≥ PRODUCER_SATURATED), with that utilisation; null if it never was.
   */
  producerSaturated: { threads: number; utilisation: number } | null
  /** The threshold used: WITHIN_BEST. */
  withinBest: number
  /** One sentence: the setting, and why. */
  reason: string
}

/**
 * The recommended setting, or null when nothing finished a single message (a handler that
 * hangs): there is no best to be near. Throws on an empty list or a malformed entry, which is
 * a caller's bug.
 */
export function recommend(
  configs: readonly MeasuredConfig[],
  /** CPUs this process may use (cpuCeiling().cpus): says why no larger count was swept. */
  cpus?: number,
): Recommendation | null {
  if (configs.length === 0) throw new Error('recommend(): no configurations measured')
  for (const c of configs) {
    if (!(c.threads >= 1) || !(c.laneBytes > 0) || !(c.throughput >= 0)) {
      throw new Error(`recommend(): malformed measurement ${JSON.stringify(c)}`)
    }
  }
  const best = configs.reduce((a, b) => (b.throughput > a.throughput ? b : a))
  if (best.throughput <= 0) return null

  const floor = best.throughput * WITHIN_BEST
  const chosen = configs
    .filter((c) => c.throughput >= floor)
    .reduce((a, b) =>
      b.threads < a.threads || (b.threads === a.threads && b.laneBytes < a.laneBytes) ? b : a,
    )

  const sameLane = configs
    .filter((c) => c.laneBytes === chosen.laneBytes)
    .sort((a, b) => a.threads - b.threads)
  const nextConfig = sameLane.find((c) => c.threads > chosen.threads)
  const next = nextConfig
    ? { threads: nextConfig.threads, adds: nextConfig.throughput / chosen.throughput - 1 }
    : null
  const saturated = sameLane.find((c) => c.mainThreadUtilisation >= PRODUCER_SATURATED)
  const producerSaturated = saturated
    ? { threads: saturated.threads, utilisation: saturated.mainThreadUtilisation }
    : null

  const recommendation: Omit<Recommendation, 'reason'> = {
    threads: chosen.threads,
    laneBytes: chosen.laneBytes,
    throughput: chosen.throughput,
    ofBest: chosen.throughput / best.throughput,
    best: { threads: best.threads, laneBytes: best.laneBytes, throughput: best.throughput },
    next,
    producerSaturated,
    withinBest: WITHIN_BEST,
  }
  return { ...recommendation, reason: reasonFor(recommendation, configs, sameLane, cpus) }
}

function reasonFor(
  r: Omit<Recommendation, 'reason'>,
  configs: readonly MeasuredConfig[],
  sameLane: readonly MeasuredConfig[],
  cpus: number | undefined,
): string {
  const laneSizes = new Set(configs.map((c) => c.laneBytes)).size
  const setting =
    laneSizes > 1
      ? `${threadsWord(r.threads)}, ${formatBytes(r.laneBytes)} lanes`
      : threadsWord(r.threads)
  const parts: string[] = []
  const isBest = r.best.threads === r.threads && r.best.laneBytes === r.laneBytes
  parts.push(
    isBest
      ? `${setting}: the best measured (${formatRate(r.throughput)} msg/s)`
      : `${setting}: ${percent(r.ofBest)} of the best (${formatRate(r.best.throughput)} msg/s at ${threadsWord(r.best.threads)}${laneSizes > 1 ? `, ${formatBytes(r.best.laneBytes)} lanes` : ''})`,
  )
  if (r.next) {
    const what =
      r.next.threads === r.threads + 1
        ? `a ${ordinal(r.next.threads)} thread`
        : `${threadsWord(r.next.threads)}`
    const verb = r.next.threads === r.threads + 1 ? 'adds' : 'add'
    parts.push(
      r.next.adds >= 0
        ? `${what} ${verb} ${percent(r.next.adds)}`
        : `${what} ${r.next.threads === r.threads + 1 ? 'loses' : 'lose'} ${percent(-r.next.adds)}`,
    )
  } else if (cpus !== undefined && r.threads >= cpus) {
    parts.push(`no more were swept: this process may use ${cpus} CPU${cpus === 1 ? '' : 's'}`)
  } else if (sameLane.length > 1) {
    parts.push('it is the largest count swept: more threads might do better (--threads)')
  }
  if (r.producerSaturated) {
    parts.push(
      `the producer is saturated at ${r.producerSaturated.threads} (main thread ${percent(r.producerSaturated.utilisation)} busy)`,
    )
  } else {
    const most = Math.max(...sameLane.map((c) => c.mainThreadUtilisation))
    parts.push(`the producer is not saturated (main thread at most ${percent(most)} busy)`)
  }
  if (laneSizes > 1) {
    const others = configs.filter((c) => c.threads === r.threads && c.laneBytes !== r.laneBytes)
    const compared = others
      .map((c) => `${formatBytes(c.laneBytes)} lanes give ${percent(c.throughput / r.throughput)}`)
      .join(', ')
    if (compared) parts.push(`at ${threadsWord(r.threads)}, ${compared}`)
  }
  return parts.join('; ')
}

/** "1 thread", "3 threads". */
export function threadsWord(n: number): string {
  return n === 1 ? '1 thread' : `${n} threads`
}

/** 2 → "2nd", 3 → "3rd", 11 → "11th". */
export function ordinal(n: number): string {
  const tens = n % 100
  if (tens >= 11 && tens <= 13) return `${n}th`
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`
}

/** 0.973 → "97 %"; shares under 10 % keep a decimal ("1.4 %"). */
export function percent(share: number): string {
  const p = share * 100
  return `${Math.abs(p) < 10 && p !== 0 ? p.toFixed(1) : p.toFixed(0)} %`
}

/** 1234567 → "1.23M", 45600 → "45.6k", 980 → "980". */
export function formatRate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`
  return n.toFixed(0)
}

/** 65536 → "64 KiB", 1048576 → "1 MiB". */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`
  return `${n} B`
}
