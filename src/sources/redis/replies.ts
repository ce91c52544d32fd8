/**
 * Redis stream replies (the `…Buffer` commands of ioredis) → plain entries. XREADGROUP answers
 * `[[stream, entries]]` on RESP2 and on RESP3 with ioredis's default reply mapping, and
 * `{ stream: entries }` with `replyMapping: 'resp3'`: both are read.
 */

/** One entry: its id, and its fields and values in order (null: deleted while pending). */
export interface StreamEntry {
  id: string
  fields: (Buffer | string)[] | null
}

function text(value: unknown): string {
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  throw new TypeError(`unexpected Redis reply item: ${String(value)}`)
}

function entriesOf(list: unknown): StreamEntry[] {
  if (!Array.isArray(list)) return []
  return list.map((item) => {
    if (!Array.isArray(item)) throw new TypeError('unexpected Redis stream entry')
    const [id, fields] = item as [unknown, unknown]
    return { id: text(id), fields: Array.isArray(fields) ? (fields as Buffer[]) : null }
  })
}

/** XREADGROUP … STREAMS <one stream> <id>: its entries ([] on a BLOCK that timed out). */
export function readGroupEntries(reply: unknown): StreamEntry[] {
  if (reply === null || reply === undefined) return []
  if (Array.isArray(reply)) {
    const first = reply[0] as unknown
    return Array.isArray(first) ? entriesOf(first[1]) : []
  }
  if (typeof reply === 'object') {
    const [list] = Object.values(reply as Record<string, unknown>)
    return entriesOf(list)
  }
  throw new TypeError('unexpected XREADGROUP reply')
}

/** XCLAIM (without JUSTID): the entries claimed (one deleted meanwhile is left out). */
export function readClaimEntries(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) throw new TypeError('unexpected XCLAIM reply')
  return entriesOf(reply.filter((item) => Array.isArray(item) && Array.isArray(item[1])))
}

/** XAUTOCLAIM: where the next call starts ('0-0': the pass is over), and the claimed entries. */
export function autoClaimReply(reply: unknown): { cursor: string; entries: StreamEntry[] } {
  if (!Array.isArray(reply) || reply.length < 2) throw new TypeError('unexpected XAUTOCLAIM reply')
  return { cursor: text(reply[0]), entries: entriesOf(reply[1]) }
}

/** The value of `field` in an entry's fields, or undefined. */
export function fieldValue(
  fields: readonly (Buffer | string)[],
  field: string,
): Buffer | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (text(fields[i]) === field) {
      const value = fields[i + 1]
      return Buffer.isBuffer(value) ? value : Buffer.from(text(value), 'utf8')
    }
  }
  return undefined
}

/**
 * XPENDING <stream> <group> <id> <id> 1: how many times that entry was delivered, and to whom;
 * undefined when it is no longer pending (acked meanwhile).
 */
export function pendingOf(reply: unknown): { consumer: string; deliveries: number } | undefined {
  if (!Array.isArray(reply) || reply.length === 0) return undefined
  const row = reply[0] as unknown[]
  if (!Array.isArray(row) || row.length < 4) return undefined
  return { consumer: text(row[1]), deliveries: Number(row[3]) }
}
