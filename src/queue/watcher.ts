import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Lane } from './lane.js'

/** Event-loop turns to poll for a run() result before parking on RELEASE (µs each). */
const POLL_TURNS = 64

export interface WatchHost {
  /** A lane released records: waiting pushes may fit now, backlog pressure may have eased. */
  progressed(): void
  /** The loop failed (a conveyor bug): report it. */
  failed(error: Error): void
}

/**
 * Turns one lane's progress into settlements and samples, for as long as it has messages in
 * flight or samples to collect (`needsWatching`): apply the worker's progress (`drain()`), let
 * the queue react, then park on the WATCHED doorbell until the worker releases again. No
 * timeout is needed: the doorbell loses no wake-up, and the supervisor rings it too when it
 * adopts a dead worker's cursor.
 *
 * At most one loop per lane (`lane.watching`); a lane with nothing to wait for has none.
 */
export function watch(lane: Lane, host: WatchHost): void {
  if (lane.watching) return
  lane.watching = true
  void watchLoop(lane, host)
}

async function watchLoop(lane: Lane, host: WatchHost): Promise<void> {
  let polls = 0
  try {
    while (lane.needsWatching) {
      const seen = lane.writer.released
      lane.drain()
      host.progressed()
      if (!lane.needsWatching) break
      if (lane.awaitingResults > 0 && polls < POLL_TURNS) {
        // Someone awaits a result: a few event-loop turns of polling answer in µs, where
        // parking costs the latency of an Atomics.waitAsync wake-up (~20 µs here).
        polls++
        await nextTurn()
        continue
      }
      await lane.writer.waitForRelease(seen)
      polls = 0
    }
  } catch (err) {
    host.failed(err as Error)
  } finally {
    lane.watching = false
  }
}
