/**
 * The online thread controller (issue 9): how many lanes to run, decided once per window from
 * what the queue measured. Pure logic: no timers, no queue, no I/O. The queue calls
 * `observe(window)` at the end of each window and applies the decision with `resize()`.
 *
 * It is a hill climber with feedback, shaped by what went wrong with .NET's ThreadPool hill
 * climber (oscillation, bursts, slow convergence). The rules:
 *
 * 1. Judge only clean windows. The first `warmup` windows are discarded (workers starting, code
 *    not yet optimised), and the first window after a change (it holds the
 *    transition: lanes starting, draining). So is a window with fewer than `minCompletions`
 *    completions (too few to say anything), and one where the queue ran another count than the
 *    controller asked for (a resize failed or is in progress: the controller follows the queue
 *    and measures again).
 * 2. A setting is judged on the median of `samples` windows, never on one: a burst (a GC
 *    pause, a lull in the input, another process) moves one window, not a median.
 * 3. A step is kept only if it paid. Growth: throughput rose by at least max(min(`margin`,
 *    half of linear scaling), 2 × the standard error of the comparison), the error coming
 *    from the noise measured between windows at the same count. Removal: throughput fell by
 *    at most `tolerance` from the best measured above it (so a run of small removals cannot
 *    add up to more). A result within one standard error of its threshold takes another
 *    window, up to `maxSamples`. A step that did not pay is undone, and the count it tried is
 *    blocked for `probeEvery` × 2^k windows (k: how often it was blocked), so probes at steady
 *    state grow rare.
 * 4. Steps are ±1 at steady state. While a search (from the start, a shift, or a count the
 *    queue imposed, until the first hold) keeps paying, its step doubles (1, 2, 4…): ±1 with
 *    a cool-down and 3 windows per judgement takes ~250 windows to cross 64 cores, .NET's slow
 *    convergence. A doubled step that does not pay is halved from where it started
 *    (bisection), down to 1. Growth doubles only when the gain was at least half linear (the
 *    lanes added earned half of what the first ones did). `maxStep: 1` makes every step ±1.
 * 5. Never grow at the ceiling (`max`), while producer-bound (the main thread saturated and
 *    the lanes below `busyLanes`: they wait for it, and a lane more only takes CPU from it), or
 *    while input-starved (lanes idle for want of messages, backlog not rising: the source is
 *    slow). A saturated main thread beside saturated lanes does not stop growth: both limit,
 *    and a trial says whether a lane more pays (it may: the producer had ~10 % left).
 * 6. Shed what is provably idle: when producer-bound or input-starved, Σ busy says how many
 *    lanes' worth of handler time the window needed; the controller tries
 *    min(⌈Σ busy / `targetBusy`⌉, ⌈Σ busy⌉ + 1) lanes (at most halving at once). The lanes were
 *    shown idle, so the measurement only has to not contradict it: the shed is kept unless it
 *    lost more than the tolerance plus 2 standard errors (at most twice the tolerance).
 * 7. Bias towards fewer: at steady state it tries one lane fewer, unless the last lane was
 *    measured (recently) to add at least `tolerance`: removing it would cost more than allowed.
 *    Of two counts within the tolerance, it keeps the smaller. And back towards the best: when
 *    the current count loses more than twice the tolerance to one measured above it (the gap is
 *    hysteresis: removals stop at 1×, returns start at 2×), that count is tried again in one
 *    step, so a gentle slope (each lane below the margin) is still climbed and removals that
 *    each looked free cannot drift away from the best.
 * 8. React to a persistent shift: when each of the last `samples` windows at the held count
 *    moved the same way by more than max(`shift`, 4σ of the noise) from what was measured there
 *    (a handler 10× heavier, a producer 10× faster), everything remembered is forgotten and the
 *    search starts again from the current count.
 * 9. Never leave [`min`, `max`].
 *
 * Every decision says why, with its numbers, and goes into a bounded log (`log()`), for
 * `stats()`, the `'threads'` event and the CLI.
 */
import { median, robustSigma } from './robust.js'
import {
  checkWindow,
  readSignals,
  type SignalThresholds,
  type TuneWindow,
  type WindowSignals,
} from './signals.js'

export interface ControllerOptions {
  /** The floor: the user's `threads.min` (≥ 1). */
  readonly min: number
  /** The ceiling: the CPU ceiling (`cpu-ceiling.ts`) capped by the user's `threads.max`. */
  readonly max: number
  /** Lanes running now. Clamped into [min, max] (the first decision then says so). */
  readonly initial: number
  /**
   * Windows discarded at the start: workers starting, code not yet optimised. A base measured
   * then is too low, and a first removal judged against it looks free (on 2 real cores a
   * producer-bound queue shed to 1 lane at 0.75 s and took seconds to come back). @default 2
   */
  readonly warmup?: number
  /** Windows with fewer completions are discarded. @default 100 */
  readonly minCompletions?: number
  /** Clean windows a setting is judged on. @default 3 */
  readonly samples?: number
  /** The most windows an ambiguous judgement may take. @default 6 */
  readonly maxSamples?: number
  /** Least relative throughput gain that keeps a growth step. @default 0.03 */
  readonly margin?: number
  /** Most relative throughput loss that a removal may cost and be kept. @default 0.02 */
  readonly tolerance?: number
  /** Main-thread utilisation from which the producer counts as saturated. @default 0.9 */
  readonly mainSaturated?: number
  /** Mean lane busy fraction below which lanes count as starved (backlog not rising). @default 0.8 */
  readonly starvedBusy?: number
  /** Backlog growth (× completions) that counts as rising. @default 0.02 */
  readonly risingBacklog?: number
  /**
   * Mean lane busy fraction from which lanes count as saturated: a saturated main thread then
   * is not alone in limiting, and growth may still be tried. @default 0.9
   */
  readonly busyLanes?: number
  /** Busy fraction per lane that shedding aims at. @default 0.85 */
  readonly targetBusy?: number
  /** Clean windows between probes at steady state; also the base of the block time. @default 10 */
  readonly probeEvery?: number
  /** Relative move of a held count's throughput that counts as a shift. @default 0.2 */
  readonly shift?: number
  /**
   * CPUs the lanes may use (cpu-ceiling.ts). When every lane is busy, the main thread is not
   * saturated and the lanes fit these CPUs, each lane is doing work no other could take over:
   * rule 7 then does not probe one fewer (a probe would cost ~1/n of the throughput for a
   * second, to learn what the busy times already say). @default undefined: always probe
   */
  readonly cpus?: number
  /** Largest step, in lanes (1: strictly ±1). @default Infinity */
  readonly maxStep?: number
  /** Decisions kept in the log. @default 128 */
  readonly logSize?: number
}

export type Action = 'grow' | 'shrink' | 'hold'

/** What to do after a window. */
export interface Decision {
  /** Index of the window this answers (0-based, every window counted, discarded ones too). */
  readonly window: number
  /** Lanes to run from now on. */
  readonly lanes: number
  /** Lanes the window ran. */
  readonly previous: number
  /** lanes − previous: ±1 at steady state, larger only while a search pays (rule 4). */
  readonly change: number
  readonly action: Action
  /** Why, with the numbers: 'grew: +7.2% over 3 lanes (41.2k → 44.2k msg/s): trying 4'. */
  readonly reason: string
  /** The window's throughput (msg/s), when it could be read. */
  readonly throughput?: number
}

/** The controller's view, for `stats()`. */
export interface ControllerView {
  readonly lanes: number
  readonly min: number
  readonly max: number
  /** 'measure': judging the current count; 'trial': judging a step; 'hold': steady. */
  readonly phase: 'measure' | 'trial' | 'hold'
  /** The relative noise between windows at the same count (σ), as measured. */
  readonly noise: number
  /** Median throughput measured per count since the last shift. */
  readonly measured: ReadonlyArray<{ lanes: number; throughput: number }>
  /** Counts not to try before a window index. */
  readonly blocked: ReadonlyArray<{ lanes: number; until: number }>
  readonly last?: Decision
}

interface Sample {
  readonly throughput: number
  readonly signals: WindowSignals
}

type Phase =
  | { readonly name: 'measure' }
  | { readonly name: 'hold'; readonly until: number }
  | {
      readonly name: 'trial'
      readonly from: number
      readonly dir: 1 | -1
      readonly step: number
      /** A removal the busy fractions asked for (rule 6): kept unless it clearly cost. */
      readonly shed: boolean
      /** Median throughput at `from`, and on how many windows. */
      readonly base: number
      readonly baseCount: number
    }

/** Relative noise assumed until enough windows have measured it. */
const NOISE_PRIOR = 0.03
/** Below this, measured noise is taken as this (timer resolution, rounding). */
const NOISE_FLOOR = 0.005
/** Differences between windows kept to measure the noise. */
const NOISE_HISTORY = 40
/** Differences needed before the measured noise replaces the prior. */
const NOISE_MIN_DIFFS = 6
/** Standard error of a median of k gaussian values is ≈ √(π/2) σ / √k. */
const MEDIAN_EFFICIENCY = Math.sqrt(Math.PI / 2)
/** Blocks last at most probeEvery × 2^this windows. */
const MAX_STRIKES = 5

export class ThreadController {
  readonly #min: number
  readonly #max: number
  readonly #minCompletions: number
  readonly #samples: number
  readonly #maxSamples: number
  readonly #margin: number
  readonly #tolerance: number
  readonly #targetBusy: number
  readonly #probeEvery: number
  readonly #shift: number
  readonly #maxStep: number
  readonly #cpus: number | undefined
  readonly #logSize: number
  readonly #thresholds: SignalThresholds

  #lanes: number
  /** `initial` was outside [min, max]: the first decision moves into it, and says so. */
  #clampedAtStart: boolean
  #index = 0
  #cooldown = 0
  #warmup: number
  #phase: Phase = { name: 'measure' }
  /** Clean windows at the current count since it was set. */
  #here: Sample[] = []
  #measured = new Map<number, number>()
  /** The window each count in #measured was measured at. */
  #measuredAt = new Map<number, number>()
  #blocked = new Map<number, { until: number; strikes: number }>()
  #growStep = 1
  #shrinkStep = 1
  /**
   * True from the start, a shift or a resync until the first hold: only a search doubles its
   * steps. A probe at steady state that pays continues ±1, so the count walks, not jumps.
   */
  #searching = true
  /** Relative differences between consecutive clean windows at one count. */
  #diffs: number[] = []
  #log: Decision[] = []

  constructor(options: ControllerOptions) {
    const { min, max, initial } = options
    if (!Number.isInteger(min) || min < 1)
      throw new RangeError(`min must be an integer ≥ 1, got ${min}`)
    if (!Number.isInteger(max) || max < min) {
      throw new RangeError(`max must be an integer ≥ min (${min}), got ${max}`)
    }
    if (!Number.isInteger(initial) || initial < 1) {
      throw new RangeError(`initial must be an integer ≥ 1, got ${initial}`)
    }
    this.#min = min
    this.#max = max
    this.#warmup = options.warmup ?? 2
    this.#minCompletions = options.minCompletions ?? 100
    this.#samples = options.samples ?? 3
    this.#maxSamples = Math.max(this.#samples, options.maxSamples ?? 6)
    this.#margin = options.margin ?? 0.03
    this.#tolerance = options.tolerance ?? 0.02
    this.#targetBusy = options.targetBusy ?? 0.85
    this.#probeEvery = options.probeEvery ?? 10
    this.#shift = options.shift ?? 0.2
    this.#maxStep = options.maxStep ?? Number.POSITIVE_INFINITY
    this.#cpus = options.cpus
    this.#logSize = options.logSize ?? 128
    if (!(this.#maxStep >= 1)) throw new RangeError(`maxStep must be ≥ 1, got ${this.#maxStep}`)
    this.#thresholds = {
      mainSaturated: options.mainSaturated ?? 0.9,
      starvedBusy: options.starvedBusy ?? 0.8,
      risingBacklog: options.risingBacklog ?? 0.02,
      busyLanes: options.busyLanes ?? 0.9,
    }
    this.#lanes = clamp(initial, min, max)
    this.#clampedAtStart = this.#lanes !== initial
  }

  /** Lanes the controller wants now. */
  get lanes(): number {
    return this.#lanes
  }

  /** The last decisions, oldest first (at most `logSize`). */
  log(): readonly Decision[] {
    return this.#log.slice()
  }

  view(): ControllerView {
    return {
      lanes: this.#lanes,
      min: this.#min,
      max: this.#max,
      phase: this.#phase.name,
      noise: this.#noise(),
      measured: [...this.#measured]
        .sort((a, b) => a[0] - b[0])
        .map(([lanes, throughput]) => ({ lanes, throughput })),
      blocked: [...this.#blocked].map(([lanes, b]) => ({ lanes, until: b.until })),
      last: this.#log[this.#log.length - 1],
    }
  }

  /** Takes one window's measurements; says how many lanes to run next, and why. */
  observe(window: TuneWindow): Decision {
    const problem = checkWindow(window)
    if (problem) throw new RangeError(`thread controller: ${problem}`)
    const index = this.#index++
    const ran = window.lanes

    if (this.#clampedAtStart) {
      this.#clampedAtStart = false
      return this.#move(
        index,
        ran,
        this.#lanes,
        `${ran} lanes is outside [${this.#min}, ${this.#max}]`,
      )
    }
    if (ran !== this.#lanes) {
      // The queue runs another count than asked (a resize failed, is still going, or someone
      // resized by hand): follow it, forget the step in progress, and measure again.
      const wanted = this.#lanes
      this.#restartAt(ran)
      const target = clamp(ran, this.#min, this.#max)
      if (target !== ran) {
        return this.#move(
          index,
          ran,
          target,
          `the queue ran ${ran} lanes, outside [${this.#min}, ${this.#max}]`,
        )
      }
      return this.#record(
        index,
        ran,
        ran,
        `the queue ran ${ran} lanes, not ${wanted}: measuring ${ran}`,
      )
    }

    const signals = readSignals(window, this.#thresholds)
    const throughput = signals.throughput
    if (this.#warmup > 0) {
      this.#warmup--
      return this.#record(index, ran, ran, `warm-up at ${ran} lanes, discarded`, throughput)
    }
    if (this.#cooldown > 0) {
      this.#cooldown--
      return this.#record(
        index,
        ran,
        ran,
        `cool-down: first window at ${ran} lanes holds the change, discarded`,
        throughput,
      )
    }
    if (window.completions < this.#minCompletions) {
      return this.#record(
        index,
        ran,
        ran,
        `discarded: ${window.completions} completions < ${this.#minCompletions}, too few to judge`,
        throughput,
      )
    }
    this.#addSample({ throughput, signals })

    const phase = this.#phase
    if (phase.name === 'measure') {
      if (this.#here.length < this.#samples) {
        return this.#record(
          index,
          ran,
          ran,
          `measuring ${ran} lanes: ${this.#here.length} of ${this.#samples} windows`,
          throughput,
        )
      }
      this.#remember(ran, this.#median())
      return this.#explore(index, `${ran} lanes: ${rate(this.#median())}`, throughput)
    }
    if (phase.name === 'hold') return this.#hold(index, phase.until, throughput)
    return this.#judge(index, phase, throughput)
  }

  // ---- phases ----------------------------------------------------------------------------

  #hold(index: number, until: number, throughput: number): Decision {
    const n = this.#lanes
    const ref = this.#measured.get(n)
    if (this.#here.length >= this.#samples) {
      const last = this.#here.slice(-this.#samples).map((s) => s.throughput)
      const recent = median(last)
      if (ref === undefined) {
        this.#remember(n, recent)
      } else {
        // Every one of the last windows must have moved, the same way: a median of 3 still
        // follows 2 bursts in a row, which a few hundred windows make likely enough.
        const limit = Math.max(this.#shift, 4 * this.#noise())
        const up = last.every((t) => t / ref - 1 > limit)
        const down = last.every((t) => t / ref - 1 < -limit)
        if (up || down) {
          // Rule 8: the plant changed under us. What was learnt about other counts is stale.
          const moved = recent / ref - 1
          this.#forget()
          // The windows before the shift describe another plant: the base is what came after.
          this.#here = this.#here.slice(-this.#samples)
          this.#remember(n, recent)
          return this.#explore(
            index,
            `shift: ${n} lanes moved ${pct(moved)} (${rate(ref)} → ${rate(recent)}), re-exploring`,
            throughput,
          )
        }
      }
      if (index >= until)
        return this.#explore(index, `probe at ${n} lanes (${rate(recent)})`, throughput)
    }
    const left = Math.max(0, until - index)
    return this.#record(
      index,
      n,
      n,
      `steady at ${n} lanes${ref === undefined ? '' : ` (${rate(ref)})`}: next probe in ≥ ${left} windows`,
      throughput,
    )
  }

  #judge(index: number, trial: Extract<Phase, { name: 'trial' }>, throughput: number): Decision {
    const n = this.#lanes
    const k = this.#here.length
    if (k < this.#samples) {
      return this.#record(
        index,
        n,
        n,
        `trying ${n} lanes: ${k} of ${this.#samples} windows`,
        throughput,
      )
    }
    const now = this.#median()
    const se = this.#stdErr(k, trial.baseCount)
    const change = now / trial.base - 1
    const lanesText = `${trial.step} lane${trial.step === 1 ? '' : 's'}`
    if (trial.dir === 1) {
      // A lane must earn half of what linear scaling would give it, capped at `margin`: with a
      // flat 3 % no single lane past the 33rd could ever pay on 64 cores.
      const threshold = Math.max(Math.min(this.#margin, (0.5 * trial.step) / trial.from), 2 * se)
      const what = `${pct(change)} over ${lanesText} (${rate(trial.base)} → ${rate(now)})`
      if (change >= threshold) {
        this.#remember(n, now)
        // Rule 4: double while the lanes added earn at least half what linear scaling would.
        const linear = trial.step / trial.from
        this.#growStep = this.#searching && change >= 0.5 * linear ? trial.step * 2 : 1
        this.#shrinkStep = 1
        return this.#explore(index, `grew: ${what}`, throughput)
      }
      if (change >= threshold - se && k < this.#maxSamples) {
        return this.#record(
          index,
          n,
          n,
          `trying ${n} lanes: ${what} is close to ${pct(threshold)}, one more window`,
          throughput,
        )
      }
      return this.#undo(index, trial, `no gain: ${what} < ${pct(threshold)}`, throughput)
    }
    // A removal is judged against the best measured at the counts it came from, so that a
    // run of removals each costing a little cannot add up to more than the tolerance.
    const ref = Math.max(trial.base, this.#bestAbove(n))
    const loss = 1 - now / ref
    const what = `${n} lanes kept ${pct(1 - loss, false)} of ${rate(ref)} (${rate(now)})`
    // A shed removes lanes the busy fractions showed idle: the measurement only has to not
    // contradict that (no loss beyond the tolerance and 2 standard errors), but never more than
    // twice the tolerance: on 16 real cores, halving a producer-bound queue's idle-looking lanes
    // cost 4–5 % a time (fewer lanes wake more often per message), which the noise let through
    // until the queue held 91 % of its best. A plain removal is a guess, and has to show its
    // loss within the tolerance.
    const allowed = trial.shed
      ? Math.min(this.#tolerance + 2 * se, 2 * this.#tolerance)
      : this.#tolerance
    if (loss <= allowed && (allowed - loss > se || k >= this.#maxSamples)) {
      this.#remember(n, now)
      // A shed went as far as the busy fractions allowed: doubling past it would be a guess.
      this.#shrinkStep =
        this.#searching && !trial.shed && loss <= this.#tolerance / 2 ? trial.step * 2 : 1
      this.#growStep = 1
      // Rule 7: of two counts within the tolerance keep the smaller; do not grow straight back.
      this.#block(n + 1, index)
      return this.#explore(index, `shrank: ${what}`, throughput)
    }
    if (loss <= allowed + se && k < this.#maxSamples) {
      return this.#record(
        index,
        n,
        n,
        `trying ${n} lanes: ${what}, close to the ${pct(allowed, false)} allowed, one more window`,
        throughput,
      )
    }
    return this.#undo(
      index,
      trial,
      `too costly: ${what}, more than ${pct(allowed, false)} lost`,
      throughput,
    )
  }

  /** A step did not pay: bisect it (rule 4), or go back and remember (rule 3). */
  #undo(
    index: number,
    trial: Extract<Phase, { name: 'trial' }>,
    why: string,
    throughput: number,
  ): Decision {
    const n = this.#lanes
    // A step that did not pay still measured its count: the best above a removal and the
    // return to the best (rule 7) use it.
    this.#remember(n, this.#median())
    if (trial.step > 1) {
      const step = Math.floor(trial.step / 2)
      const to = trial.from + trial.dir * step
      this.#phase = { ...trial, step }
      return this.#move(
        index,
        n,
        to,
        `${why}: trying ${to} (${signed(trial.dir * step)} from ${trial.from})`,
        throughput,
      )
    }
    this.#block(n, index)
    if (trial.dir === 1) this.#growStep = 1
    else this.#shrinkStep = 1
    // Re-measure `from` before the next probe: the shift check needs fresh windows there.
    this.#searching = false
    this.#phase = { name: 'hold', until: index + 1 + this.#samples }
    return this.#move(index, n, trial.from, `${why}: back to ${trial.from}`, throughput)
  }

  /** Chooses the next step from the current count, or holds (rules 5, 6, 7). */
  #explore(index: number, prefix: string, throughput: number): Decision {
    const n = this.#lanes
    const recent = this.#here.slice(-this.#samples)
    const busySum = median(recent.map((s) => s.signals.busySum))
    const saturated = majority(recent, (s) => s.signals.producerBound)
    const starved = majority(recent, (s) => s.signals.starved)
    const meanBusy = busySum / n
    const why: string[] = []

    // Rule 6: shed lanes that are provably idle.
    if ((saturated || starved) && n > this.#min && !this.#isBlocked(n - 1, index)) {
      // Enough lanes for the work at `targetBusy` each, or the work plus one spare lane,
      // whichever is fewer: 85 % leaves 7 idle lanes at 40 lanes' worth, far more than needed.
      const need = Math.max(
        this.#min,
        Math.min(Math.ceil(busySum / this.#targetBusy), Math.ceil(busySum) + 1),
      )
      if (need < n) {
        const step = Math.min(n - need, Math.ceil(n / 2), this.#maxStep)
        const cause = saturated ? 'producer-bound (main thread saturated)' : 'input-starved'
        return this.#try(
          index,
          -1,
          step,
          `${prefix}; ${cause}, lanes ${pct(meanBusy, false)} busy (Σ ${busySum.toFixed(1)} of ${n}): shedding to ${n - step}`,
          throughput,
          true,
        )
      }
    }

    // Rule 5: when growth is off the table, say why.
    if (n >= this.#max) why.push(`at the ceiling (${this.#max})`)
    else if (saturated) {
      why.push(
        `producer-bound (main thread saturated, lanes ${pct(meanBusy, false)} busy): no growth`,
      )
    } else if (starved)
      why.push(`input-starved (lanes ${pct(meanBusy, false)} busy, backlog not rising): no growth`)
    else if (this.#betterAbove(n, index) !== undefined) {
      const m = this.#betterAbove(n, index)!
      const gain = this.#measured.get(m)! / this.#measured.get(n)! - 1
      const step = Math.min(m - n, this.#maxStep)
      return this.#try(
        index,
        1,
        step,
        `${prefix}: ${m} lanes measured ${pct(gain)} more, trying ${n + step}`,
        throughput,
      )
    } else if (this.#isBlocked(n + 1, index))
      why.push(
        `${n + 1} lanes tried recently (again after window ${this.#blocked.get(n + 1)!.until})`,
      )
    else {
      // Rule 4 (a search's first step): every lane busy and the producer with room — the lanes
      // are the limit, and the main thread could feed up to 1/utilisation as many messages.
      // Step by what that room allows, up to doubling, instead of starting at +1: a handler
      // turned 10× heavier on 16 cores is then met in two steps, not five.
      const u = median(recent.map((s) => s.signals.mainUtilisation))
      const room =
        this.#searching && meanBusy >= this.#thresholds.busyLanes && u > 0
          ? Math.min(n, Math.floor(n * (this.#thresholds.mainSaturated / u - 1)))
          : 0
      const step = Math.min(Math.max(this.#growStep, room), this.#max - n, this.#maxStep)
      const because =
        room > this.#growStep
          ? ` (lanes ${pct(meanBusy, false)} busy, main thread ${pct(u, false)})`
          : ''
      return this.#try(index, 1, step, `${prefix}${because}: trying ${n + step}`, throughput)
    }

    // Rule 7: try one fewer, unless the last lane was shown to be worth its keep, or every
    // lane is busy on a CPU of its own while the producer has room (each lane is needed).
    const lanesNeeded =
      this.#cpus !== undefined &&
      n <= this.#cpus &&
      meanBusy >= this.#thresholds.busyLanes &&
      !majority(recent, (s) => s.signals.mainSaturated)
    if (lanesNeeded && n > this.#min) {
      why.push(
        `every lane busy (${pct(meanBusy, false)}) on its own CPU, main thread not saturated`,
      )
    } else if (n > this.#min && !this.#isBlocked(n - 1, index)) {
      // What one lane fewer measured counts for a while only: a single unlucky judgement must
      // not rule out removal probes for the rest of the regime.
      const fresh = index - (this.#measuredAt.get(n - 1) ?? -Infinity) <= 8 * this.#probeEvery
      const below = fresh ? this.#measured.get(n - 1) : undefined
      const here = this.#measured.get(n)
      const lastGain = below !== undefined && here !== undefined ? here / below - 1 : undefined
      if (lastGain === undefined || lastGain < this.#tolerance) {
        const step = Math.min(this.#shrinkStep, n - this.#min, this.#maxStep)
        return this.#try(
          index,
          -1,
          step,
          `${prefix}; ${why.join('; ')}: trying ${n - step}`,
          throughput,
        )
      }
      why.push(`lane ${n} adds ${pct(lastGain)}`)
    } else if (n > this.#min) {
      why.push(
        `${n - 1} lanes tried recently (again after window ${this.#blocked.get(n - 1)!.until})`,
      )
    }
    this.#searching = false
    this.#phase = { name: 'hold', until: index + this.#probeEvery }
    return this.#record(index, n, n, `${prefix}; ${why.join('; ')}: holding ${n}`, throughput)
  }

  #try(
    index: number,
    dir: 1 | -1,
    step: number,
    reason: string,
    throughput: number,
    shed = false,
  ): Decision {
    const from = this.#lanes
    // The base is every clean window at this count (a hold has ~probeEvery of them: a more
    // precise base makes the judgement sharper); `measured` only when there are none.
    const baseCount = this.#here.length
    const base =
      baseCount >= this.#samples ? this.#median() : (this.#measured.get(from) ?? this.#median())
    // What the current count measures now replaces what it measured before: a lucky window
    // kept as the best would make every later removal look too costly.
    this.#remember(from, base)
    this.#phase = {
      name: 'trial',
      from,
      dir,
      step,
      shed,
      base,
      baseCount: Math.max(this.#samples, baseCount),
    }
    return this.#move(index, from, from + dir * step, reason, throughput)
  }

  // ---- state -----------------------------------------------------------------------------

  #move(index: number, from: number, to: number, reason: string, throughput?: number): Decision {
    this.#lanes = to
    this.#here = []
    // Rule 1: the next window holds the transition.
    this.#cooldown = 1
    return this.#record(index, from, to, reason, throughput)
  }

  #restartAt(lanes: number): void {
    this.#lanes = clamp(lanes, this.#min, this.#max)
    this.#here = []
    this.#cooldown = 0
    this.#searching = true
    this.#phase = { name: 'measure' }
  }

  #forget(): void {
    this.#searching = true
    this.#measured.clear()
    this.#measuredAt.clear()
    this.#blocked.clear()
    this.#growStep = 1
    this.#shrinkStep = 1
  }

  #addSample(sample: Sample): void {
    const prev = this.#here[this.#here.length - 1]
    if (prev) {
      const mean = (prev.throughput + sample.throughput) / 2
      if (mean > 0) {
        this.#diffs.push((sample.throughput - prev.throughput) / mean)
        if (this.#diffs.length > NOISE_HISTORY) this.#diffs.shift()
      }
    }
    this.#here.push(sample)
    // A base older than a couple of probe periods may describe a plant that drifted since.
    if (this.#here.length > 2 * this.#probeEvery) this.#here.shift()
  }

  #remember(lanes: number, throughput: number): void {
    this.#measured.set(lanes, throughput)
    this.#measuredAt.set(lanes, this.#index - 1)
  }

  #median(): number {
    return median(this.#here.map((s) => s.throughput))
  }

  /** σ of one window's throughput, relative: a difference of two windows has √2 σ. */
  #noise(): number {
    if (this.#diffs.length < NOISE_MIN_DIFFS) return NOISE_PRIOR
    return Math.max(NOISE_FLOOR, robustSigma(this.#diffs) / Math.SQRT2)
  }

  /** Standard error of (median of k windows) / (median of kb windows) − 1. */
  #stdErr(k: number, kb: number): number {
    const sigma = this.#noise() * MEDIAN_EFFICIENCY
    return sigma * Math.sqrt(1 / k + 1 / kb)
  }

  /**
   * A count above n that the current one loses more than twice the tolerance to, not blocked:
   * a search that bisected past it, or one-lane gains too small to see one at a time that add up (a gentle slope: +2.5 % a lane for 4 lanes is 10 %, each step below the margin).
   */
  #betterAbove(n: number, index: number): number | undefined {
    const here = this.#measured.get(n)
    if (here === undefined) return undefined
    // Twice the bar of a removal: removals may lose up to `tolerance` each against the best, and
    // the gap between the two bars is the hysteresis that keeps noise from bouncing the count
    // between them. The growth trial that follows still has to show its gain beyond the noise.
    const need = here / (1 - 2 * this.#tolerance)
    let best: number | undefined
    for (const [lanes, t] of this.#measured) {
      if (lanes > n && lanes <= this.#max && t > need && !this.#isBlocked(lanes, index)) {
        if (best === undefined || t > this.#measured.get(best)!) best = lanes
      }
    }
    return best
  }

  #bestAbove(n: number): number {
    let best = 0
    for (const [lanes, t] of this.#measured) if (lanes > n && t > best) best = t
    return best
  }

  #block(lanes: number, index: number): void {
    const strikes = Math.min(MAX_STRIKES, (this.#blocked.get(lanes)?.strikes ?? 0) + 1)
    this.#blocked.set(lanes, { until: index + this.#probeEvery * 2 ** strikes, strikes })
  }

  #isBlocked(lanes: number, index: number): boolean {
    const b = this.#blocked.get(lanes)
    return b !== undefined && index < b.until
  }

  #record(index: number, from: number, to: number, reason: string, throughput?: number): Decision {
    const change = to - from
    const decision: Decision = {
      window: index,
      lanes: to,
      previous: from,
      change,
      action: change > 0 ? 'grow' : change < 0 ? 'shrink' : 'hold',
      reason,
      ...(throughput === undefined ? {} : { throughput }),
    }
    this.#log.push(decision)
    if (this.#log.length > this.#logSize) this.#log.shift()
    return decision
  }
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n))
}

function majority<T>(items: readonly T[], test: (item: T) => boolean): boolean {
  let yes = 0
  for (const item of items) if (test(item)) yes++
  return yes * 2 > items.length
}

/** 41234 → '41.2k msg/s'. */
function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)}M msg/s`
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k msg/s`
  return `${perSecond.toFixed(0)} msg/s`
}

/** 0.072 → '+7.2%' (signed) or '7.2%'. */
function pct(fraction: number, sign = true): string {
  const text = `${(fraction * 100).toFixed(1)}%`
  return sign && fraction >= 0 ? `+${text}` : text
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : String(n)
}
