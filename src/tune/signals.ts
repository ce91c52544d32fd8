/**
 * What the queue measures over one window (a few hundred ms) for the thread controller
 * (`controller.ts`), and what the controller reads from it.
 *
 * Everything here is a plain number the queue already has or can count cheaply: completions
 * from its counters, busy time from the lanes' stats blocks (time in handlers, measured by the
 * workers: a worker parked in `Atomics.wait` is idle here, whereas event-loop utilisation would
 * call it busy), the backlog at both ends of the window, and the main thread's event-loop
 * utilisation (`performance.eventLoopUtilization()` deltas).
 */

/** One window of measurements, as the queue reports it. */
export interface TuneWindow {
  /** Lanes (worker threads) that ran during the whole window. */
  readonly lanes: number
  /** Milliseconds the window lasted (> 0). */
  readonly elapsedMs: number
  /** Messages finished in the window (acked, dead-lettered or aborted: anything a lane did). */
  readonly completions: number
  /**
   * Per lane, the fraction of the window its worker spent in handlers, 0..1. One entry per
   * lane; a lane that started or stopped mid-window should not be in a judged window anyway.
   */
  readonly busy: readonly number[]
  /** Messages waiting (in the lanes' rings and in the waiting list) when the window began. */
  readonly backlogStart: number
  /** The same, when the window ended. */
  readonly backlogEnd: number
  /** The main thread's event-loop utilisation over the window, 0..1. */
  readonly mainUtilisation: number
}

/** Thresholds that turn a window into the controller's view of it. */
export interface SignalThresholds {
  /** Main-thread utilisation at or above which the producer is the bottleneck. */
  readonly mainSaturated: number
  /** Mean lane busy fraction below which lanes wait for input (unless the backlog grows). */
  readonly starvedBusy: number
  /** Backlog growth, as a fraction of the window's completions, that counts as rising. */
  readonly risingBacklog: number
  /** Mean lane busy fraction from which the lanes count as saturated too. */
  readonly busyLanes: number
}

/** A window as the controller reads it. */
export interface WindowSignals {
  /** Completions per second. */
  readonly throughput: number
  /** Σ busy over lanes: how many lanes' worth of handler time the window needed. */
  readonly busySum: number
  /** busySum / lanes. */
  readonly meanBusy: number
  /** The backlog grew by more than `risingBacklog` × completions: input outpaces the lanes. */
  readonly backlogRising: boolean
  /** The main thread's event-loop utilisation, 0..1. */
  readonly mainUtilisation: number
  /** The main thread's utilisation is at or above the threshold. */
  readonly mainSaturated: boolean
  /**
   * The producer is the bottleneck: its thread is saturated while the lanes have slack (they
   * wait for it). More lanes then only take CPU from it. When the lanes are saturated too, both
   * limit, and only a trial can say whether a lane more pays.
   */
  readonly producerBound: boolean
  /**
   * Lanes idle for want of input while the producer is not saturated: the source is slow.
   * More lanes cannot help.
   */
  readonly starved: boolean
}

/** Reads a window. Does not validate it: `checkWindow` does. */
export function readSignals(w: TuneWindow, t: SignalThresholds): WindowSignals {
  const throughput = w.completions / (w.elapsedMs / 1000)
  let busySum = 0
  for (const b of w.busy) busySum += Math.min(1, Math.max(0, b))
  const meanBusy = w.busy.length > 0 ? busySum / w.busy.length : 0
  const backlogRising = w.backlogEnd - w.backlogStart > t.risingBacklog * w.completions
  const mainSaturated = w.mainUtilisation >= t.mainSaturated
  const producerBound = mainSaturated && meanBusy < t.busyLanes
  // A growing backlog means work is there: lanes that are not busy then are slow to pick it
  // up, not starved. A saturated producer is reported as such, not as a slow source.
  const starved = !mainSaturated && !backlogRising && meanBusy < t.starvedBusy
  const mainUtilisation = Math.min(1, Math.max(0, w.mainUtilisation))
  return {
    throughput,
    busySum,
    meanBusy,
    backlogRising,
    mainUtilisation,
    mainSaturated,
    producerBound,
    starved,
  }
}

/** Why a window cannot be read at all (a bug in the caller), or undefined when it can. */
export function checkWindow(w: TuneWindow): string | undefined {
  if (!Number.isInteger(w.lanes) || w.lanes < 1)
    return `lanes must be an integer ≥ 1, got ${w.lanes}`
  if (!(w.elapsedMs > 0) || !Number.isFinite(w.elapsedMs)) {
    return `elapsedMs must be finite and > 0, got ${w.elapsedMs}`
  }
  if (!(w.completions >= 0) || !Number.isFinite(w.completions)) {
    return `completions must be finite and ≥ 0, got ${w.completions}`
  }
  if (w.busy.length !== w.lanes) {
    return `busy must have one entry per lane (${w.lanes}), got ${w.busy.length}`
  }
  if (w.busy.some((b) => !Number.isFinite(b))) return 'busy fractions must be finite'
  if (!Number.isFinite(w.backlogStart) || !Number.isFinite(w.backlogEnd)) {
    return 'backlogStart and backlogEnd must be finite'
  }
  if (!Number.isFinite(w.mainUtilisation)) return 'mainUtilisation must be finite'
  return undefined
}
