import { threadId } from 'node:worker_threads'
import type { HandlerContext, HandlerDefinition, HandlerModule } from '../src/worker.js'

/**
 * Loads the user's handler module once per worker and runs its setup once, whatever number of
 * lane tasks this worker serves over its life (a lane restarted after a crash lands on a
 * fresh worker; a resized pool may hand a worker a different lane).
 */
export class HandlerInvalid extends Error {}

export interface LoadedHandler {
  definition: HandlerDefinition
  context: HandlerContext
}

const loaded = new Map<string, Promise<LoadedHandler>>()

export function loadHandler(href: string, lane: number): Promise<LoadedHandler> {
  let entry = loaded.get(href)
  if (!entry) {
    entry = load(href, lane)
    loaded.set(href, entry)
  }
  return entry.then((h) => {
    ;(h.context as { lane: number }).lane = lane
    return h
  })
}

async function load(href: string, lane: number): Promise<LoadedHandler> {
  let mod: { default?: HandlerModule }
  try {
    mod = (await import(href)) as { default?: HandlerModule }
  } catch (err) {
    throw new HandlerInvalid(`handler module ${href} could not be imported: ${describe(err)}`)
  }
  const exported = mod.default
  let definition: HandlerDefinition
  if (typeof exported === 'function') {
    definition = { handle: exported }
  } else if (exported && typeof exported === 'object' && typeof exported.handle === 'function') {
    definition = exported
  } else {
    throw new HandlerInvalid(
      `handler module ${href} must export default defineHandler({ handle(msg, ctx) { … } }) or a default function; its default export is ${exported === undefined ? 'missing' : typeof exported}`,
    )
  }
  const context: HandlerContext = { lane, threadId, attempt: 1 }
  try {
    await definition.setup?.(context)
  } catch (err) {
    throw new HandlerInvalid(`setup() of handler module ${href} threw: ${describe(err)}`)
  }
  return { definition, context }
}

export async function teardownAll(): Promise<void> {
  for (const [href, entry] of loaded) {
    loaded.delete(href)
    const h = await entry.catch(() => undefined)
    if (h?.definition.teardown) await h.definition.teardown(h.context)
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
