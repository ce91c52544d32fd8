/**
 * `conveyor-lanes/worker`: what a handler module imports. It runs in every worker thread.
 *
 *   export default defineHandler({ setup, handle, onEvent, teardown })
 *
 * or a plain default function `(msg, ctx) => result`.
 */
export interface HandlerContext {
  /** Index of the lane this worker is serving. */
  readonly lane: number
  /** Worker thread id. */
  readonly threadId: number
  /** Attempt number of the current message (1 on first delivery). */
  attempt: number
  /**
   * Aborts when the current message's caller aborts it (the `signal` of its push() or
   * run()), or when stop() times out waiting for this handler. Pass it to async work
   * (`fetch(url, { signal: ctx.signal })`). Outside handle() it never aborts.
   */
  readonly signal: AbortSignal
  /**
   * The same as `signal.aborted`, read from shared memory: it turns true even while a
   * CPU-bound handler never yields, so a long loop can poll it and return early. (An
   * AbortSignal only changes state when the worker's event loop runs.)
   */
  readonly aborted: boolean
}

export interface HandlerDefinition<In = unknown, Out = unknown> {
  /** Once per worker, before the first message (go-zero's consumer factory). */
  setup?(ctx: HandlerContext): void | Promise<void>
  /** Handles one message; sync or async. The return value goes to `queue.run()` callers. */
  handle(msg: In, ctx: HandlerContext): Out | Promise<Out>
  /**
   * The delay in ms before attempt `attempt + 1` of a message whose attempt `attempt` threw
   * (BullMQ's convention); overrides retry.backoffMs. Must return a finite number ≥ 0.
   */
  backoff?(attempt: number, error: unknown, ctx: HandlerContext): number
  /** Receives `queue.broadcast(event)`. */
  onEvent?(event: unknown, ctx: HandlerContext): void | Promise<void>
  /** Once per worker, after its lane drained on `stop()`. */
  teardown?(ctx: HandlerContext): void | Promise<void>
}

export type HandlerFunction<In = unknown, Out = unknown> = (
  msg: In,
  ctx: HandlerContext,
) => Out | Promise<Out>

export type HandlerModule<In = unknown, Out = unknown> =
  | HandlerDefinition<In, Out>
  | HandlerFunction<In, Out>

/** Identity at run time; gives the handler its types. */
export function defineHandler<In = unknown, Out = unknown>(
  definition: HandlerDefinition<In, Out>,
): HandlerDefinition<In, Out> {
  return definition
}
