/**
 * A plant for the thread controller: what a queue on a simulated machine would measure in one
 * window with n lanes. Deterministic for a seed.
 *
 * Throughput with n lanes is the least of four limits:
 * - lanes:     n / c(n)                each lane one handler at a time, c(n) = c · (1 + k(n − 1))
 *                                     (k: contention per extra lane: caches, memory bandwidth)
 * - CPU:       cores / (c(n) + p(n))  every message costs handler time plus producer time
 * - producer:  1 / p(n)               the main thread pushes at most one message per p(n),
 *                                     p(n) = p · (1 + s(n − 1)): each lane costs the main thread
 *                                     a watcher and wake-ups, and past the free cores its
 *                                     spinning steals from it (s), so a producer-bound plant
 *                                     loses a little per lane
 * - input:     the rate the source offers (Infinity: as fast as the producer pushes)
 * Each window multiplies the throughput by 1 + noise·g (g ≈ gaussian, clipped at ±3), and
 * with probability `burstRate` it is a burst: throughput × a factor in [0.3, 0.6] ∪ [1.3, 1.6]
 * that the other signals do not explain (a GC pause, another process, a lull upstream).
 * `step` changes the handler's cost from a window on.
 */
import type { TuneWindow } from '../../src/tune/signals.js'

export interface PlantSpec {
  readonly cores: number
  /** Handler CPU per message, µs, on a free core. */
  readonly handlerUs: number
  /** Main-thread CPU per message pushed, µs. */
  readonly producerUs: number
  /** Messages per second the source offers. @default Infinity */
  readonly inputRate?: number
  /** Handler slowdown per extra lane. @default 0.003 */
  readonly contention?: number
  /** Producer slowdown per extra lane. @default 0.004 */
  readonly steal?: number
  /** σ of the multiplicative noise per window. @default 0.025 (±5 % at 2σ) */
  readonly noise?: number
  /** Probability that a window is a burst. @default 0.04 */
  readonly burstRate?: number
  /** From window `at` on, the handler costs `handlerUs`. */
  readonly step?: { readonly at: number; readonly handlerUs: number }
  /** @default 250 */
  readonly windowMs?: number
  readonly seed: number
}

export class Plant {
  readonly #spec: PlantSpec
  readonly #random: () => number
  #window = 0
  #backlog = 0

  constructor(spec: PlantSpec) {
    this.#spec = spec
    this.#random = mulberry32(spec.seed)
  }

  /** Handler cost now, µs. */
  handlerUs(window = this.#window): number {
    const step = this.#spec.step
    return step && window >= step.at ? step.handlerUs : this.#spec.handlerUs
  }

  /** Noise-free throughput with n lanes at a window (msg/s), and which limit set it. */
  throughput(
    n: number,
    window = this.#window,
  ): { rate: number; limit: string; c: number; p: number } {
    const s = this.#spec
    const c = this.handlerUs(window) * 1e-6 * (1 + (s.contention ?? 0.003) * (n - 1))
    const p = s.producerUs * 1e-6 * (1 + (s.steal ?? 0.004) * (n - 1))
    const limits: [number, string][] = [
      [n / c, 'lanes'],
      [s.cores / (c + p), 'cpu'],
      [1 / p, 'producer'],
      [s.inputRate ?? Number.POSITIVE_INFINITY, 'input'],
    ]
    let best = limits[0]
    for (const l of limits) if (l[0] < best[0]) best = l
    return { rate: best[0], limit: best[1], c, p }
  }

  /**
   * The plant's optimum at a window over [1, max]: the best throughput, and the smallest count
   * within 5 % of it.
   */
  optimum(
    max: number,
    window = this.#window,
  ): { best: number; bestLanes: number; smallest: number } {
    let best = 0
    let bestLanes = 1
    for (let n = 1; n <= max; n++) {
      const r = this.throughput(n, window).rate
      if (r > best) [best, bestLanes] = [r, n]
    }
    let smallest = 1
    while (this.throughput(smallest, window).rate < 0.95 * best) smallest++
    return { best, bestLanes, smallest }
  }

  /** One window with n lanes, as the queue would report it. */
  run(n: number): TuneWindow {
    const s = this.#spec
    const windowMs = s.windowMs ?? 250
    const { rate, limit, c, p } = this.throughput(n)
    const noise = s.noise ?? 0.025
    let factor = 1 + noise * this.#gaussian()
    // Busy and main-thread time follow the explained throughput; a burst is not explained.
    const explained = rate * factor
    if (this.#random() < (s.burstRate ?? 0.04)) {
      factor *= this.#random() < 0.5 ? 0.3 + 0.3 * this.#random() : 1.3 + 0.3 * this.#random()
    }
    const completions = Math.max(0, Math.round(rate * factor * (windowMs / 1000)))
    const busyEach = Math.min(1, (explained * c) / n)
    const busy = Array.from({ length: n }, () => clamp01(busyEach * (1 + 0.02 * this.#gaussian())))
    const mainUtilisation = clamp01(
      limit === 'producer' ? 0.97 + 0.02 * this.#random() : explained * p,
    )
    // The producer fills the rings when lanes are the bottleneck (up to their capacity, 1000
    // messages a lane); it keeps them near empty otherwise.
    const backlogStart = this.#backlog
    const capacity = 1000 * n
    if (limit === 'lanes' || limit === 'cpu') {
      const offered = Math.min(s.inputRate ?? Number.POSITIVE_INFINITY, 1 / p)
      this.#backlog = Math.min(capacity, this.#backlog + (offered - explained) * (windowMs / 1000))
    } else {
      this.#backlog = Math.min(capacity, 2 * n)
    }
    this.#window++
    return {
      lanes: n,
      elapsedMs: windowMs,
      completions,
      busy,
      backlogStart,
      backlogEnd: Math.max(0, this.#backlog),
      mainUtilisation,
    }
  }

  /** ≈ standard gaussian (Irwin–Hall of 4 uniforms, scaled), clipped at ±3. */
  #gaussian(): number {
    const sum = this.#random() + this.#random() + this.#random() + this.#random()
    return Math.max(-3, Math.min(3, (sum - 2) * Math.sqrt(3)))
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x))
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
