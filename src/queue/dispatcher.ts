import type { Lane } from './lane.js'

/** Re-pick the emptiest lane this often: cheaper than reading every cursor per message. */
const PICK_EVERY = 32

/**
 * Where keys were before a resize with ordering 'key', until the old lanes have finished
 * what they held then. A key whose lane changed waits until its old lane has settled every
 * record up to the lane's write cursor at the switch (its `fence`): every message of that key
 * written before the switch has had its ack or nack, so the key's order holds in its new
 * lane, acks included. (RELEASE passing the fence is not enough: the old lane's acks come
 * when the main thread applies it, and the new lane's may come first.) Keys whose lane did
 * not change never wait.
 */
export class Transition {
  private readonly fences: Map<Lane, number>

  constructor(readonly lanes: readonly Lane[]) {
    this.fences = new Map(lanes.map((lane) => [lane, lane.writer.cursor]))
  }

  /** Whether `lane` settled every record written to it before the switch. */
  passed(lane: Lane): boolean {
    return lane.settledThrough(this.fences.get(lane)!)
  }

  /** Every old lane is past its fence: the transition is over. */
  get done(): boolean {
    return this.lanes.every((lane) => this.passed(lane))
  }
}

/**
 * Chooses a lane per message. 'none': the lane with the shortest backlog, re-chosen every
 * PICK_EVERY messages (or when the current one is full). 'key': a consistent hash of the key
 * (laneOfKey), so one key always lands on one lane and is handled in push order; during a
 * resize's transition, a key whose lane changed gets no lane (it waits) until its old lane
 * has caught up.
 */
export class Dispatcher {
  private current = 0
  private countdown = 0
  /** How many messages the lane of the last pickStretch() takes. */
  stretch = 0

  constructor(
    private readonly lanes: readonly Lane[],
    private readonly byKey: boolean,
    private readonly transition?: Transition,
  ) {}

  /** The lane for a message; undefined while its key must wait for a transition. */
  pick(key: string | number | undefined): Lane | undefined {
    if (this.byKey && key !== undefined) {
      const hash = hashKey(key)
      const lane = this.lanes[jumpHash(hash, this.lanes.length)]
      const t = this.transition
      if (t === undefined) return lane
      const old = t.lanes[jumpHash(hash, t.lanes.length)]
      return old === lane || t.passed(old) ? lane : undefined
    }
    if (--this.countdown <= 0) this.repick()
    return this.lanes[this.current]
  }

  /**
   * For unkeyed messages: the lane for a stretch of at most `count` of them, the one that as
   * many pick() calls would choose; `stretch` says how many it takes before the next re-pick.
   */
  pickStretch(count: number): Lane {
    if (this.countdown <= 0) this.repick()
    this.stretch = Math.min(count, this.countdown)
    this.countdown -= this.stretch
    return this.lanes[this.current]
  }

  /** The emptiest lane now; also what a full lane falls back to. */
  repick(): Lane {
    if (this.lanes.length === 1) {
      // Nothing to choose: reading the lane's RELEASE (a cache line the worker writes) every
      // PICK_EVERY messages would be the only cost of choosing.
      this.countdown = Number.POSITIVE_INFINITY
      return this.lanes[0]
    }
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

/** The lane index of `key` among `lanes` lanes (ordering 'key'). */
export function laneOfKey(key: string | number, lanes: number): number {
  return jumpHash(hashKey(key), lanes)
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

/**
 * Jump consistent hash (Lamping & Veach, 2014) over a 32-bit LCG: a bucket in [0, buckets).
 * Going from n to m > n buckets moves only keys into the new buckets n..m-1; going down moves
 * only the keys of the removed buckets. So a resize re-homes as few keys as possible, and only
 * those must wait for their old lane (Transition). The bucket is the last element below
 * `buckets` of a sequence fixed by the hash, which is why both properties hold.
 */
export function jumpHash(hash: number, buckets: number): number {
  let k = hash >>> 0
  let b = 0
  let j = 0
  while (j < buckets) {
    b = j
    k = (Math.imul(k, 1664525) + 1013904223) >>> 0
    j = Math.floor((b + 1) * (0x1000000 / ((k >>> 8) + 1)))
  }
  return b
}
