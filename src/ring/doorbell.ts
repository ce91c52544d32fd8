/**
 * The ring's one waiting protocol, used in both directions (reader parked for records,
 * writer parked for releases). A doorbell is a control slot that is 1 while someone is parked
 * on it or about to be, and 0 otherwise.
 *
 *   parker:  store slot = 1 → re-check its condition → wait(slot, expected 1) → store 0
 *   ringer:  change the condition (WRITE, RELEASE or STATE) → if slot is 1: exchange to 0, notify
 *
 * Both sides' stores are sequentially consistent, so either the parker's re-check sees the
 * change, or the ringer sees the 1. And the parker waits on the doorbell itself, expecting
 * 1: a ring that lands between the re-check and the wait has already set it to 0, so the wait
 * returns at once. No wake-up can be lost, and a ringer makes a system call only when
 * someone is (about to be) parked.
 */
export function ringDoorbell(ctl: Int32Array, slot: number): void {
  if (Atomics.load(ctl, slot) !== 0 && Atomics.exchange(ctl, slot, 0) !== 0) {
    Atomics.notify(ctl, slot)
  }
}

/** Announces a parker; follow with a re-check of the condition before waiting. */
export function armDoorbell(ctl: Int32Array, slot: number): void {
  Atomics.store(ctl, slot, 1)
}

export function disarmDoorbell(ctl: Int32Array, slot: number): void {
  Atomics.store(ctl, slot, 0)
}

/** Blocks this thread until rung or `timeoutMs` passes. */
export function waitDoorbellSync(ctl: Int32Array, slot: number, timeoutMs: number): void {
  Atomics.wait(ctl, slot, 1, timeoutMs)
  Atomics.store(ctl, slot, 0)
}

/** Resolves when rung or `timeoutMs` passes, without blocking the event loop. */
export async function waitDoorbell(
  ctl: Int32Array,
  slot: number,
  timeoutMs: number,
): Promise<void> {
  const result = Atomics.waitAsync(ctl, slot, 1, timeoutMs)
  if (result.async) await result.value
  Atomics.store(ctl, slot, 0)
}
