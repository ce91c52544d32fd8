import { workerData } from 'node:worker_threads'
import type { HandlerContext, HandlerDefinition, HandlerFunction } from '../../worker.js'

/**
 * The comparison path: the same handler module behind Piscina's run(), one postMessage per
 * message, as users run it without conveyor.
 */
const href = (workerData as { handler: string }).handler
const mod = (await import(href)) as { default: HandlerDefinition | HandlerFunction }
const definition: HandlerDefinition =
  typeof mod.default === 'function' ? { handle: mod.default } : mod.default
const context: HandlerContext = {
  lane: -1,
  threadId: 0,
  attempt: 1,
  signal: new AbortController().signal,
  aborted: false,
}
await definition.setup?.(context)

export default function run(message: unknown): unknown {
  return definition.handle(message, context)
}
