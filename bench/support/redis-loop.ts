import type { Redis } from 'ioredis'
import { work } from './work.js'

/**
 * The consumer a user writes today without this library: one ioredis connection, XREADGROUP a
 * batch, run the handler on each entry on the main thread, XACK the batch, again. The redis
 * source suite runs it in the bench process and in child processes (workers/redis-loop.ts).
 */
export interface LoopOptions {
  stream: string
  group: string
  consumer: string
  /** Rounds of bench/support/work.ts per message. */
  rounds: number
  /** Entries per XREADGROUP. */
  count?: number
}

/** Results are folded in here so no engine can drop the work. */
export const loopSink = { value: 0 }

/** Runs until `stopped()` is true (checked between batches); returns the messages handled. */
export async function plainLoop(
  redis: Redis,
  o: LoopOptions,
  stopped: () => boolean,
): Promise<number> {
  let handled = 0
  while (!stopped()) {
    const reply = (await redis.xreadgroup(
      'GROUP',
      o.group,
      o.consumer,
      'COUNT',
      o.count ?? 32,
      'BLOCK',
      100,
      'STREAMS',
      o.stream,
      '>',
    )) as [string, [string, string[]][]][] | null
    if (!reply) continue
    const entries = reply[0][1]
    const ids: string[] = new Array(entries.length)
    for (let i = 0; i < entries.length; i++) {
      const [id, fields] = entries[i]
      loopSink.value ^= work(fields[1], o.rounds)
      ids[i] = id
    }
    await redis.xack(o.stream, o.group, ...ids)
    handled += ids.length
  }
  return handled
}
