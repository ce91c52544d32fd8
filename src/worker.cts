/**
 * `conveyor/worker` for CommonJS handler modules: `const { defineHandler } = require(…)`.
 * A CommonJS form, so that a CommonJS handler never reaches the ES module through require(esm)
 * (missing before Node 20.19, off under --no-experimental-require-module); the types are
 * the ESM module's, defineHandler is the same identity.
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
