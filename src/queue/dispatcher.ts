import type { Lane } from './lane.js'

/** Re-pick the emptiest lane this often: cheaper than reading every cursor per message. */
const PICK_EVERY = 32

/**
 * Chooses a lane per message. 'none': the lane with the shortest backlog, re-chosen every
 * PICK_EVERY messages (or when the current one is full). 'key': a hash of the key, so one
 * key always lands on one lane and is handled in push order.
 */
export class Dispatcher {
  private current = 0
  private countdown = 0

  constructor(
    private readonly lanes: readonly Lane[],
    private readonly byKey: boolean,
  ) {}

  pick(key: string | number | undefined): Lane {
    if (this.byKey && key !== undefined) return this.lanes[hashKey(key) % this.lanes.length]
    if (--this.countdown <= 0) this.repick()
    return this.lanes[this.current]
  }

  /** The emptiest lane now; also what a full lane falls back to. */
  repick(): Lane {
    let best = 0
    let bestBacklog = Number.POSITIVE_INFINITY
    for (let i = 0; i < this.lanes.length; i++) {
      const backlog = this.lanes[i].writer.backlog
      if (backlog < bestBacklog) {
        best = i
        bestBacklog = backlog
      }
    }
    this.current = best
    this.countdown = PICK_EVERY
    return this.lanes[best]
  }
}

/** FNV-1a over the key's UTF-16 units: stable across runs and processes. */
export function hashKey(key: string | number): number {
  const text = typeof key === 'number' ? String(key) : key
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}
