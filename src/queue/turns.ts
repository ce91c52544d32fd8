/** Longest stretch a producer loop may run without the event loop getting a turn. */
const TURN_EVERY_MS = 5
/** Calls between clock reads (a clock read costs ~30 ns; a push ~300). */
const CHECK_EVERY = 64

/**
 * Gives timers and I/O a turn while a producer loop runs flat out. `push()` into a lane with
 * room returns an already resolved promise, so `for (…) await queue.push(m)` would otherwise
 * run in microtasks only: no timer, no I/O, no AbortSignal for as long as lanes have room.
 *
 * A probe (setImmediate) notes each turn the event loop really takes; once none was seen
 * for TURN_EVERY_MS, `due()` returns a promise that resolves on the next turn, for the loop
 * to await. A producer that yields on its own never pays more than the probe.
 */
export class EventLoopTurns {
  private calls = 0
  private turnAt = performance.now()
  private probing = false

  /** undefined, or a promise to await before going on. */
  due(): Promise<void> | undefined {
    if (++this.calls < CHECK_EVERY) return undefined
    this.calls = 0
    if (!this.probing) {
      this.probing = true
      setImmediate(this.probe)
    }
    if (performance.now() - this.turnAt < TURN_EVERY_MS) return undefined
    // The probe was scheduled first: it runs in the same check phase, before this resolves.
    return new Promise((resolve) => setImmediate(resolve))
  }

  private readonly probe = (): void => {
    this.probing = false
    this.turnAt = performance.now()
  }
}
