/**
 * `conveyor/worker` for CommonJS handler modules: `const { defineHandler } = require(…)`.
 * Workers run with require(esm) off (see pool/lane-pool.ts), so a CommonJS handler needs a
 * CommonJS form; the types are the ESM module's, defineHandler is the same identity.
 */
import type { HandlerDefinition } from './worker.js'

export type {
  HandlerContext,
  HandlerDefinition,
  HandlerFunction,
  HandlerModule,
} from './worker.js'

/** Identity at run time; gives the handler its types. */
export function defineHandler<In = unknown, Out = unknown>(
  definition: HandlerDefinition<In, Out>,
): HandlerDefinition<In, Out> {
  return definition
}
