import { moduleHref } from '../codec/index.js'
import type { HandlerDefinition, HandlerFunction } from '../worker.js'

declare const handlerTypes: unique symbol

/**
 * A handler module's URL that also carries its message and result types, so that
 * `createQueue({ handler })` infers `Queue<In, Out>` from the handler itself. At run time it
 * is a plain URL.
 */
export type HandlerRef<In, Out> = URL & { readonly [handlerTypes]?: (message: In) => Out }

/** The handler definition a module exports by default (or the definition itself). */
type DefinitionOf<M> = M extends { default: infer D } ? D : M

/** The message type of a handler module (`typeof import('./handler.js')`) or definition. */
export type HandlerIn<M> =
  DefinitionOf<M> extends HandlerDefinition<infer In, unknown>
    ? In
    : DefinitionOf<M> extends HandlerFunction<infer In, unknown>
      ? In
      : unknown

/** The result type (what `run()` resolves with) of a handler module or definition. */
export type HandlerOut<M> =
  DefinitionOf<M> extends { handle(...args: never[]): infer R }
    ? Awaited<R>
    : DefinitionOf<M> extends (...args: never[]) => infer R
      ? Awaited<R>
      : unknown

/**
 * The URL of a handler module, typed by the module:
 *
 *   const queue = createQueue({
 *     handler: handlerUrl<typeof import('./handler.js')>('./handler.js', import.meta.url),
 *   }) // Queue<Order, string>, from the handler's own types
 *
 * Without `base`, a string is a path (relative to the working directory) or a URL.
 */
export function handlerUrl<M>(
  url: string | URL,
  base?: string | URL,
): HandlerRef<HandlerIn<M>, HandlerOut<M>> {
  if (url instanceof URL) return url
  return base === undefined ? new URL(moduleHref(url)) : new URL(url, base)
}
