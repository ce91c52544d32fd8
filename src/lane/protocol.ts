/**
 * What the main thread and a lane's worker agree on, beyond the ring itself.
 *
 * A lane is two rings and a stats block:
 *  - request ring (main → worker): one record per message; its tag says whether a caller
 *    awaits the result (run()) and how many workers already died on it.
 *  - completion ring (worker → main): only what RELEASE cannot say: results, handler errors
 *    (with the raw payload, so a dead letter needs no main-side copy), dead letters.
 *  - stats block: counters the worker keeps with plain stores; the main thread only samples.
 *
 * Order per record, in the worker: completion record published → DONE stored → (maybe)
 * RELEASE stored. So when the main thread sees RELEASE or DONE past a record, any completion
 * of that record is already readable.
 */
export const Tag = {
  /** A caller awaits this record's result: answer on the completion ring. */
  WANTS_RESULT: 1,
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

/** Kinds of completion record (its ring tag). */
export const Completion = {
  /** run() succeeded: body is the v8-serialized result. */
  RESULT: 1,
  /** A handler attempt threw; another attempt follows. body: error + payload. */
  FAILED: 2,
  /** The last attempt threw: a pushed message is dead-lettered, a run() rejects. */
  GAVE_UP: 3,
} as const

/**
 * Completion body: [start cursor u32][attempt u32][error bytes u32][error JSON][rest].
 * `rest` is the serialized result (RESULT) or the raw request payload (FAILED, GAVE_UP).
 */
export const COMPLETION_PREFIX = 12

export interface SerializedError {
  name: string
  message: string
  stack?: string
  code?: string
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
} as const
export const STAT_SLOTS = 8

/** Everything a lane task needs, structured-clone safe. */
export interface LaneInit {
  lane: number
  requests: SharedArrayBuffer
  completions: SharedArrayBuffer
  stats: SharedArrayBuffer
  handler: string
  codec: string | { module: string }
  attempts: number
  backoffMs: number
}

/** How a lane task ended, as returned to the main thread. */
export type LaneExit =
  | { kind: 'drained' }
  | { kind: 'aborted' }
  | { kind: 'handler-invalid'; message: string }
