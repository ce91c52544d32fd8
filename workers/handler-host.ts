import { threadId } from 'node:worker_threads'
import { type SerializedError, serializeError } from '../src/lane/error-wire.js'
import { importUserModule } from '../src/user-module.js'
import type { HandlerDefinition, HandlerModule } from '../src/worker.js'
import { LaneContext } from './context.js'

/**
 * Loads the user's handler module once per worker and runs its setup once, whatever number of
 * lane tasks this worker serves over its life (a lane restarted after a crash lands on a
 * fresh worker; a resized pool may hand a worker a different lane). Only a successful setup
 * is kept: a setup that threw is tried again by the next lane task on this worker.
 */

/** The module cannot serve as a handler: importing it again would fail the same way. */
export class HandlerInvalid extends Error {}
/** setup() threw: perhaps transient (a database down), so the lane is retried later. */
export class SetupFailed extends Error {}

export interface LoadedHandler {
  definition: HandlerDefinition
  context: LaneContext
}

const loaded = new Map<string, LoadedHandler>()

export async function loadHandler(href: string, lane: number): Promise<LoadedHandler> {
  let handler = loaded.get(href)
  if (!handler) {
    handler = await load(href, lane)
    loaded.set(href, handler)
  }
  handler.context.lane = lane
  return handler
}

async function load(href: string, lane: number): Promise<LoadedHandler> {
  let mod: { default?: HandlerModule }
  try {
    mod = (await importUserModule(href)) as { default?: HandlerModule }
  } catch (err) {
    throw new HandlerInvalid(`handler module ${href} could not be imported: ${describe(err)}`)
  }
  const exported = mod.default
  let definition: HandlerDefinition
  if (typeof exported === 'function') {
    definition = { handle: exported }
  } else if (exported && typeof exported === 'object' && typeof exported.handle === 'function') {
    definition = exported
    for (const hook of ['setup', 'onEvent', 'teardown', 'backoff'] as const) {
      if (definition[hook] !== undefined && typeof definition[hook] !== 'function') {
        throw new HandlerInvalid(
          `handler module ${href}: ${hook} must be a function, got ${typeof definition[hook]}`,
        )
      }
    }
  } else {
    throw new HandlerInvalid(
      `handler module ${href} must export default defineHandler({ handle(msg, ctx) { … } }) or a default function; its default export is ${exported === undefined ? 'missing' : typeof exported}`,
    )
  }
  const context = new LaneContext(lane, threadId)
  try {
    await definition.setup?.(context)
  } catch (err) {
    throw new SetupFailed(`setup() of handler module ${href} threw: ${describe(err)}`)
  }
  return { definition, context }
}

/** Runs every loaded handler's teardown once; returns the first error, never throws. */
export async function teardownAll(): Promise<SerializedError | undefined> {
  let first: SerializedError | undefined
  for (const [href, h] of loaded) {
    loaded.delete(href)
    try {
      await h.definition.teardown?.(h.context)
    } catch (err) {
      first ??= serializeError(err, 'TEARDOWN_FAILED')
    }
  }
  return first
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
