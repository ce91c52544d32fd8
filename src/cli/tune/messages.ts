import { readFileSync } from 'node:fs'
import { UsageError } from '../flags.js'

/**
 * The messages `conveyor tune` pushes, all in memory before the first configuration runs:
 * producing them (reading, parsing, calling a generator) is then never what is measured, and
 * every configuration sees the same messages. The sweep cycles through them.
 */

/** How many messages a generator is asked for: enough variety, bounded memory. */
export const GENERATED_MESSAGES = 16_384

/**
 * Parses NDJSON: one JSON value per line; blank lines (and a trailing newline, `\r\n` line
 * ends) are skipped. A line that is not JSON is a UsageError naming its line number (1-based).
 */
export function parseNdjson(text: string, source = 'messages'): unknown[] {
  const messages: unknown[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim()
    if (line === '') continue
    try {
      messages.push(JSON.parse(line))
    } catch (err) {
      const shown = line.length > 60 ? `${line.slice(0, 57)}...` : line
      throw new UsageError(
        `${source}: line ${i + 1} is not JSON (${(err as Error).message}): ${shown}`,
      )
    }
  }
  if (messages.length === 0) throw new UsageError(`${source}: no messages (every line is blank)`)
  return messages
}

export function readNdjson(path: string): unknown[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--messages: cannot read ${path}: ${(err as Error).message}`)
  }
  return parseNdjson(text, `--messages ${path}`)
}

type Generator =
  | ((i: number) => unknown)
  | (() => Iterator<unknown> | AsyncIterator<unknown> | Iterable<unknown>)

/**
 * Loads a generator module (its default export): a function `(i) => message`, called for
 * i = 0, 1, …, or a (possibly async) generator function, iterated; either way at most `count`
 * messages. Every message must encode as JSON (the codec the sweep uses).
 */
export async function generateMessages(
  href: string,
  count = GENERATED_MESSAGES,
): Promise<unknown[]> {
  let mod: { default?: unknown }
  try {
    mod = (await import(href)) as { default?: unknown }
  } catch (err) {
    throw new UsageError(`--generator: cannot load ${href}: ${(err as Error).message}`)
  }
  const fn = mod.default
  if (typeof fn !== 'function') {
    throw new UsageError(
      `--generator: ${href} must export default a function (i) => message or a generator function`,
    )
  }
  const messages: unknown[] = []
  try {
    const kind = fn.constructor?.name
    if (kind === 'GeneratorFunction' || kind === 'AsyncGeneratorFunction') {
      // for await also walks a sync generator.
      for await (const m of (fn as () => AsyncIterable<unknown>)()) {
        messages.push(m)
        if (messages.length >= count) break
      }
    } else {
      for (let i = 0; i < count; i++) messages.push(await (fn as Generator)(i))
    }
  } catch (err) {
    if (err instanceof UsageError) throw err
    throw new UsageError(
      `--generator: it threw after ${messages.length} messages: ${(err as Error).message}`,
    )
  }
  if (messages.length === 0) throw new UsageError('--generator: it produced no messages')
  messages.forEach((m, i) => {
    let text: string | undefined
    try {
      text = JSON.stringify(m)
    } catch {
      // a BigInt, a cycle: not encodable either
    }
    if (typeof text !== 'string') {
      throw new UsageError(`--generator: message ${i} cannot be encoded as JSON (${typeof m})`)
    }
  })
  return messages
}

/** The largest message, in bytes as the JSON codec writes it (UTF-8). */
export function largestEncoded(messages: readonly unknown[]): number {
  let largest = 0
  for (const m of messages) largest = Math.max(largest, Buffer.byteLength(JSON.stringify(m)))
  return largest
}
