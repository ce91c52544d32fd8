import type { SerializedError } from './error-wire.js'
import { mailboxBytes } from './sample-mailbox.js'

/**
 * What the main thread and a lane's worker agree on, beyond the ring itself.
 *
 * A lane is two rings and a stats block:
 *  - request ring (main → worker): one record per message; its tag says whether a caller
 *    awaits the result (run()) and how many workers already died on it.
 *  - completion ring (worker → main): only what RELEASE cannot say (completion.ts).
 *  - stats block: counters the worker keeps with plain stores; the main thread only samples,
 *    except READY and HANDLING, which it resets once the worker is dead, and the abort bell.
 *    After them, from SAMPLES_AT, the sample mailbox (sample-mailbox.ts, its own invariant).
 */
export const Tag = {
  /** A caller awaits this record's result: answer on the completion ring. */
  WANTS_RESULT: 1,
  /**
   * The caller's signal fired. Set by the main thread (Atomics.or) at any time before
   * RELEASE passes the record — never after, when its memory may hold another record. The
   * worker skips a flagged record, or aborts `ctx.signal` of the attempt that runs it.
   */
  ABORTED: 2,
  /** The main thread samples this record: the worker posts its timings (sample-mailbox.ts). */
  SAMPLED: 4,
  /** Workers that died while handling this record, kept in bits 8..15 by the main thread. */
  DEATHS_SHIFT: 8,
  DEATHS_MASK: 0xff00,
} as const

export function deathsOf(tag: number): number {
  return (tag & Tag.DEATHS_MASK) >>> Tag.DEATHS_SHIFT
}

export function withDeaths(tag: number, deaths: number): number {
  return (tag & ~Tag.DEATHS_MASK) | (Math.min(deaths, 0xff) << Tag.DEATHS_SHIFT)
}

/** Float64 slots of a lane's stats block. */
export const Stat = {
  HANDLED: 0,
  FAILED: 1,
  BUSY_MS: 2,
  /** 1 once the worker ran its setup and entered the loop; the main thread resets it. */
  READY: 3,
  /** 1 from reading a record until it is marked done: a crash then blames that record. */
  HANDLING: 4,
  /** The abort bell's 8 bytes, used as Int32 (ABORT_BELL): never read as a Float64. */
  ABORT_BELL: 5,
} as const
export const STAT_SLOTS = 8
/** Byte offset of the sample mailbox in a lane's stats buffer, after the stat slots. */
export const SAMPLES_AT = STAT_SLOTS * 8

/** Bytes of the stats buffer of a lane whose request ring has `ringCapacity` bytes. */
export function statsBytes(ringCapacity: number): number {
  return SAMPLES_AT + mailboxBytes(ringCapacity)
}

/**
 * Int32 index, in the stats block, of the abort bell: the main thread adds 1 and notifies
 * after it sets a record's ABORTED flag or aborts the ring; a worker whose running handler
 * watches `ctx.signal` waits on it (Atomics.waitAsync), then looks at that record's flag.
 */
export const ABORT_BELL = Stat.ABORT_BELL * 2

/** Everything a lane task needs, structured-clone safe. */
export interface LaneInit {
  lane: number
  requests: SharedArrayBuffer
  completions: SharedArrayBuffer
  stats: SharedArrayBuffer
  handler: string
  codec: string | { module: string }
  retry: RetryPolicy
}

/** How a worker retries a failing message, in place (it holds its lane meanwhile). */
export interface RetryPolicy {
  /** Handler attempts per message (and worker deaths tolerated on it). */
  attempts: number
  /** Delay before the 2nd attempt; doubles per attempt. */
  backoffMs: number
  /** The most any one delay may be. */
  maxBackoffMs: number
  /** Spread each delay over [½, 1] of itself, so retries of many messages don't align. */
  jitter: boolean
}

/**
 * How a lane task ended, as returned to the main thread. A task that throws instead (the
 * worker died, or was terminated) is a crash.
 *  - drained: the ring was closed and emptied; teardown ran (`teardownError` if it threw).
 *  - aborted: stop() gave up waiting; the rest of the ring is still there.
 *  - handler-invalid: the module cannot be imported, or exports no handler (deterministic).
 *  - setup-failed: the handler's setup() threw (maybe transient: a database down).
 */
export type LaneExit =
  | { kind: 'drained'; teardownError?: SerializedError }
  | { kind: 'aborted' }
  | { kind: 'handler-invalid'; message: string }
  | { kind: 'setup-failed'; message: string }
