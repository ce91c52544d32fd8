import type { HandlerContext } from '../src/worker.js'
import type { AbortWatch } from './abort-watch.js'

/** Outside a record (setup, teardown, onEvent) the signal never fires. */
const NEVER = new AbortController().signal

/**
 * The `ctx` every hook of a handler gets: one per worker, kept across the lane tasks it
 * serves. `signal` and `aborted` belong to the record being handled (abort-watch.ts).
 */
export class LaneContext implements HandlerContext {
  attempt = 1
  /** Set by the lane task while it runs its loop. */
  watch: AbortWatch | undefined = undefined

  constructor(
    public lane: number,
    readonly threadId: number,
  ) {}

  get signal(): AbortSignal {
    return this.watch?.signal ?? NEVER
  }

  get aborted(): boolean {
    return this.watch?.flagged ?? false
  }
}
