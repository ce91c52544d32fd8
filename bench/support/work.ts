/**
 * The synthetic CPU-bound handler body every CPU suite runs: FNV-1a over the first 32 UTF-16
 * units of the message, repeated `rounds` times. Pure JS, no allocation, a dependency chain
 * through the hash so nothing can be skipped; its cost depends on `rounds`, not on the
 * message size (the size only costs the transport). Calibrated on the main thread so that
 * `roundsFor(µs)` rounds take about that long.
 */
export function work(message: string, rounds: number): number {
  const n = Math.min(message.length, 32)
  // The characters are read once, into a typed array: the speed of charCodeAt() in optimised
  // code depends on what else the process loaded. On Node 20 any object that inherits from
  // String.prototype (ioredis 6 defines `class VerbatimString extends String`) makes every
  // charCodeAt() call ~10× slower, so a main-thread loop beside ioredis would run this body
  // far slower than a worker thread does, and the comparison would measure ioredis's import.
  for (let i = 0; i < n; i++) codes[i] = message.charCodeAt(i)
  // Int32 from the start: a double here (0x811c9dc5 > 2^31) costs a deopt and slow loop code.
  let h = 0x811c9dc5 | 0
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < n; i++) {
      h ^= codes[i] ^ r
      h = Math.imul(h, 0x01000193)
    }
  }
  return h
}

/** The message's first 32 UTF-16 units, for work(). */
const codes = new Int32Array(32)

/** The environment variable that carries the round count to worker threads. */
export const ROUNDS_ENV = 'CONVEYOR_BENCH_ROUNDS'

/** Worker side: the round count the pool or queue was started with. */
export function roundsFromEnv(): number {
  const rounds = Number(process.env[ROUNDS_ENV] ?? '0')
  if (!Number.isInteger(rounds) || rounds < 0) {
    throw new Error(`${ROUNDS_ENV} must be an integer ≥ 0, got ${process.env[ROUNDS_ENV]}`)
  }
  return rounds
}

export interface Calibration {
  /** Nanoseconds one round took on the main thread. */
  nsPerRound: number
}

let calibrated: Calibration | undefined
let sink = 0

/** Measures one round's cost once per process (~100 ms), after a JIT warm-up. */
export function calibrate(): Calibration {
  calibrated ??= { nsPerRound: measureNsPerRound() }
  return calibrated
}

/**
 * One round's cost on this thread now (~100 ms), not cached: a suite that runs the work beside
 * a library can check that the library did not slow it (see work()).
 */
export function measureNsPerRound(): number {
  const probe = 'calibration-probe:0123456789abcdefghijklmnopqrstuvwxyz'
  const rounds = 1000
  for (let i = 0; i < 200; i++) sink ^= work(probe, rounds)
  // Best of many short windows: the least disturbed by other processes on the machine.
  let best = Number.POSITIVE_INFINITY
  for (let w = 0; w < 50; w++) {
    let calls = 0
    const t0 = performance.now()
    let ms = 0
    do {
      sink ^= work(probe, rounds)
      calls++
      ms = performance.now() - t0
    } while (ms < 2)
    best = Math.min(best, (ms * 1e6) / (calls * rounds))
  }
  return best
}

/** Rounds for a handler that should take about `costUs` µs per message. */
export function roundsFor(costUs: number): number {
  if (costUs <= 0) return 0
  return Math.max(1, Math.round((costUs * 1000) / calibrate().nsPerRound))
}

/** Keeps the calibration's results observable so no engine can drop the loop. */
export function calibrationSink(): number {
  return sink
}
