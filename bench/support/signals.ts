/**
 * A small shared Int32 block the bench keeps beside each transport, so the main thread learns
 * when a worker has consumed a sample's messages without a postMessage on the measured path.
 *
 *   DONE      messages the worker has consumed so far (worker writes)
 *   TARGET    the count main waits for in the current sample (main writes)
 *   SEQ       doorbell: bumped by main after it pushed data (ringbuf.js peer only)
 *   SLEEPING  the worker is parked on SEQ (worker writes)
 *   FREED     bumped by the worker after it freed space (ringbuf.js peer only)
 *   WATCHED   main is parked on FREED (main sets, worker clears)
 *   STOP      main asks the worker to drain and exit
 *
 * Each slot sits in its own 64-byte line so the two threads' stores don't share a cache line.
 */
export const SIG = {
  DONE: 0,
  TARGET: 16,
  SEQ: 32,
  SLEEPING: 48,
  FREED: 64,
  WATCHED: 80,
  STOP: 96,
} as const

/** How long a consumer may make no progress at all before the case fails. */
export const STALL_MS = 10_000

export function createSignals(): SharedArrayBuffer {
  return new SharedArrayBuffer(512)
}

/** Worker side: publishes the consumed count, and wakes main once it reaches the target. */
export class DoneReporter {
  private readonly sig: Int32Array
  private last = 0

  constructor(signals: SharedArrayBuffer) {
    this.sig = new Int32Array(signals)
  }

  report(count: number): void {
    if (count === this.last) return
    this.last = count
    Atomics.store(this.sig, SIG.DONE, count | 0)
    // Wrap-safe "count >= target": only the store that completes a sample pays for a notify.
    if (((count - Atomics.load(this.sig, SIG.TARGET)) | 0) >= 0) Atomics.notify(this.sig, SIG.DONE)
  }
}

/** Main side: the counter of one worker, to move a sample's target and await it. */
export class DoneCounter {
  readonly sig: Int32Array
  private target = 0

  constructor(signals: SharedArrayBuffer) {
    this.sig = new Int32Array(signals)
  }

  /** Announces that `messages` more are coming; returns the count to wait for. */
  expect(messages: number): number {
    this.target = (this.target + messages) | 0
    Atomics.store(this.sig, SIG.TARGET, this.target)
    return this.target
  }

  /**
   * Resolves once the worker reports `target`. Uses Atomics.waitAsync, which does not keep the
   * event loop alive by itself: the worker (a live handle) does. `check` runs between slices and
   * throws if the consumer died, and a count that stops moving for `stallMs` is an error, so a
   * broken peer fails its case instead of hanging the run.
   */
  async reached(target: number, check: () => void, stallMs = STALL_MS): Promise<void> {
    const stall = new StallGuard('the consumer reported no progress', stallMs)
    for (;;) {
      const seen = Atomics.load(this.sig, SIG.DONE)
      if (((seen - target) | 0) >= 0) return
      check()
      stall.waiting(seen)
      const wait = Atomics.waitAsync(this.sig, SIG.DONE, seen, 250)
      if (wait.async) await wait.value
    }
  }
}

/**
 * Turns a producer stuck waiting for space into an error: `waiting(progress)` is called on each
 * wait with a value that changes whenever the consumer made progress (a cursor or counter), and
 * throws once it has not changed for `timeoutMs`.
 */
export class StallGuard {
  private last: number | undefined
  private since = 0

  constructor(
    private readonly what: string,
    private readonly timeoutMs = STALL_MS,
  ) {}

  waiting(progress: number): void {
    const now = performance.now()
    if (progress !== this.last) {
      this.last = progress
      this.since = now
    } else if (now - this.since > this.timeoutMs) {
      throw new Error(`${this.what} for ${this.timeoutMs} ms`)
    }
  }
}
