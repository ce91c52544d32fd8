import type { RingReader } from '../src/ring/index.js'

/**
 * What a lane's worker does when its ring is empty: poll WRITE for a moment, then park.
 *
 * A producer mid-burst, or a caller awaiting run() results one after another, usually
 * publishes again within the spin, and a futex wake-up costs more than the spin. Parking uses
 * Atomics.wait (a parked worker in Atomics.waitAsync wakes ~10 µs slower here) in slices, so
 * the worker's event loop still gets a turn between slices for control calls (broadcast).
 */
const SPIN_MS = 0.03
/** After answering a run() caller, spin longer: the next call usually follows within this. */
const SPIN_AFTER_RESULT_MS = 0.25
/** A parked worker wakes this often to let its event loop run. */
export const PARK_SLICE_MS = 5

export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * Waits for records. True when records may be there (read again at once); false when a park
 * slice passed quietly (the caller gives its event loop a turn, then checks the ring's state).
 */
export function waitForRecords(reader: RingReader, answeredRun: boolean): boolean {
  return (
    spin(reader, answeredRun ? SPIN_AFTER_RESULT_MS : SPIN_MS) || reader.waitSync(PARK_SLICE_MS)
  )
}

function spin(reader: RingReader, ms: number): boolean {
  const until = performance.now() + ms
  do {
    for (let i = 0; i < 64; i++) if (reader.hasNext()) return true
  } while (performance.now() < until)
  return false
}
