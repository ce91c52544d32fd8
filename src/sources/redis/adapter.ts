import type { Redis } from 'ioredis'
import type { BrokerAdapter, Delivery } from '../adapter.js'
import { RedisConnections } from './client.js'
import { LABEL, type RedisAdapterOptions } from './options.js'
import {
  autoClaimReply,
  fieldValue,
  pendingOf,
  readClaimEntries,
  readGroupEntries,
  type StreamEntry,
} from './replies.js'

/**
 * The payload of an entry without the payload field: the source's decode refuses it, so the
 * entry is dead-lettered (DECODE_FAILED) instead of handled.
 */
export const MISSING_FIELD: Buffer = Buffer.alloc(0)

/** Ids per XCLAIM command (lease extensions and give-backs of many entries). */
const CLAIM_CHUNK = 1000
/** XAUTOCLAIM calls one fetch makes at most before it reads new entries (each scans ≤ 10 × COUNT). */
const SWEEP_CALLS = 16

const isError = (err: unknown, prefix: string) =>
  err instanceof Error && err.message.startsWith(prefix)

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** Resolves with the operation, or after `ms` with undefined (the operation goes on alone). */
function within<T>(operation: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  return Promise.race([
    operation.finally(() => clearTimeout(timer)),
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    }),
  ])
}

/** A pipeline's results, or its first error. */
function results(replies: [Error | null, unknown][] | null): unknown[] {
  if (!replies) throw new Error('a Redis transaction was discarded')
  return replies.map(([err, value]) => {
    if (err) throw err
    return value
  })
}

/**
 * A Redis stream read through a consumer group (the BrokerAdapter of redisSource()):
 *
 * - fetch: first this consumer's own pending entries (XPENDING, then XCLAIM to itself: a
 *   restart under the same name, or a reply lost with the connection), then, every
 *   claimIdleMs / 2 or after a retry, the group's entries idle longer than claimIdleMs
 *   (XAUTOCLAIM: a crashed consumer's), then new ones (XREADGROUP … > BLOCK blockMs). Re-read
 *   and claimed entries carry their delivery count from XPENDING.
 * - ack: one XACK with every id of the batch.
 * - extend: XCLAIM … JUSTID of the held ids to this consumer, which resets their idle time
 *   without counting a delivery; every claimIdleMs / 3.
 * - retry: XCLAIM … IDLE claimIdleMs JUSTID: the entry stays pending but looks idle, so the
 *   next sweep (this consumer's, right away, or another's) claims it, counting a delivery.
 * - deadLetter: MULTI { XADD to the dead-letter stream, XACK } EXEC.
 * - close: every entry still pending on this consumer is made idle the same way (the others
 *   claim it at their next sweep); a default-named consumer with nothing pending leaves the
 *   group (XGROUP DELCONSUMER).
 */
export class RedisStreamsAdapter implements BrokerAdapter<string> {
  readonly leaseMs: number
  /** Failures no caller awaits (close()'s give-back): the source reports them. */
  onError: (error: Error) => void = () => {}
  private readonly connections: RedisConnections
  /** Ids fetched and not yet settled: a re-read or a claim of one of them is skipped. */
  private readonly held = new Set<string>()
  private opened = false
  private groupReady = false
  /** Where the re-read of this consumer's pending entries goes on; undefined: it is done. */
  private pendingCursor: string | undefined = '0'
  /** Where the XAUTOCLAIM pass goes on ('0-0': a new pass). */
  private claimCursor = '0-0'
  /** A retry made an entry idle: sweep again from the start. */
  private rewind = false
  private nextSweep = 0
  private readonly sweepEveryMs: number

  constructor(private readonly options: RedisAdapterOptions) {
    this.connections = new RedisConnections(options.redis, options.consumer)
    this.leaseMs = Math.max(1, Math.floor(options.claimIdleMs / 3))
    this.sweepEveryMs = Math.max(1, Math.floor(options.claimIdleMs / 2))
  }

  async fetch(max: number, signal: AbortSignal): Promise<Delivery<string>[]> {
    if (signal.aborted) return []
    this.opened = true
    // close(): the blocked XREADGROUP fails at once; what it would have delivered stays pending.
    const cut = () => this.connections.disconnectReader()
    signal.addEventListener('abort', cut, { once: true })
    try {
      return await this.read(this.connections.reader, max)
    } catch (err) {
      if (signal.aborted) return []
      // Entries delivered in a reply lost with the connection are pending on this consumer.
      this.pendingCursor = '0'
      throw err
    } finally {
      signal.removeEventListener('abort', cut)
    }
  }

  /**
   * Redis's replies that no reconnect changes, each with what to change: the stream key holds
   * another type (WRONGTYPE), the group is missing where the source may not create it
   * (NOGROUP with createGroup: false), the user may not run a command or touch a key (NOPERM),
   * or the credentials are refused (WRONGPASS, NOAUTH). Everything else is retried: connection
   * errors, timeouts, LOADING and READONLY during restarts and failovers, OOM, BUSY, and a
   * NOGROUP the source answers by creating the group again.
   */
  fatal(error: unknown): string | undefined {
    if (!(error instanceof Error)) return undefined
    const { stream, group } = this.options
    const reply = `Redis answered ${error.message}`
    if (isError(error, 'WRONGTYPE')) {
      return `${LABEL}: key '${stream}' holds something else than a stream (${reply}): pass the name of a stream as \`stream\`, or delete that key`
    }
    if (isError(error, 'NOGROUP') && this.options.createGroup === false) {
      return `${LABEL}: group '${group}' does not exist on stream '${stream}' (${reply}): with createGroup: false it must exist: create it (XGROUP CREATE ${stream} ${group} 0 MKSTREAM), or let the source create it (createGroup: true or '$')`
    }
    if (isError(error, 'NOPERM')) {
      return `${LABEL}: Redis refused a command of the source (${reply}): let its user run the stream commands (+@stream) and MULTI/EXEC on the keys '${stream}' and '${this.options.deadLetterStream}'`
    }
    if (isError(error, 'WRONGPASS') || isError(error, 'NOAUTH')) {
      return `${LABEL}: Redis refused the credentials (${reply}): check the username and password of \`redis\``
    }
    return undefined
  }

  async ack(deliveries: readonly Delivery<string>[]): Promise<void> {
    const { stream, group } = this.options
    const ids = deliveries.map((d) => d.handle)
    await this.connections.command.xack(stream, group, ...ids)
    for (const id of ids) this.held.delete(id)
  }

  async extend(deliveries: readonly Delivery<string>[]): Promise<void> {
    const { stream, group, consumer } = this.options
    const ids = deliveries.map((d) => d.handle)
    const command = this.connections.command
    await Promise.all(
      chunks(ids, CLAIM_CHUNK).map((chunk) =>
        command.call('XCLAIM', stream, group, consumer, '0', ...chunk, 'JUSTID'),
      ),
    )
  }

  async retry(delivery: Delivery<string>): Promise<void> {
    // Ours no more, from now: a sweep that claims it once it is idle delivers it again (were
    // it still held, that claim would be skipped, and its idle time reset for nothing).
    this.held.delete(delivery.handle)
    await this.makeIdle([delivery.handle])
    this.rewind = true
  }

  async deadLetter(delivery: Delivery<string>, error: Error): Promise<void> {
    const { stream, group, consumer, deadLetterStream, field } = this.options
    const code = (error as { code?: unknown }).code
    const fields: (string | Buffer)[] = [
      field,
      delivery.payload,
      'id',
      delivery.id,
      'stream',
      stream,
      'group',
      group,
      'consumer',
      consumer,
      'deliveries',
      String(delivery.deliveries),
      'error',
      error.message,
    ]
    if (typeof code === 'string') fields.push('code', code)
    try {
      const replies = await this.connections.command
        .multi()
        .xadd(deadLetterStream, '*', ...fields)
        .xack(stream, group, delivery.handle)
        .exec()
      results(replies)
    } finally {
      this.held.delete(delivery.handle)
    }
  }

  async close(unfinished: readonly Delivery<string>[]): Promise<void> {
    this.connections.disconnectReader()
    try {
      if (this.opened) {
        await within(
          this.giveBack(unfinished.map((d) => d.handle)).catch((err: unknown) => {
            this.onError(
              new Error(
                `redisSource close(): could not hand back the entries pending on consumer '${this.options.consumer}' (they come back after claimIdleMs): ${(err as Error).message}`,
                { cause: err },
              ),
            )
          }),
          this.options.closeTimeoutMs,
        )
      }
    } finally {
      this.held.clear()
      await this.connections.close(this.options.closeTimeoutMs)
    }
  }

  /** Every entry pending on this consumer (unfinished, or fetched in a lost reply): idle now. */
  private async giveBack(unfinished: string[]): Promise<void> {
    const { stream, group, consumer, defaultConsumer } = this.options
    const command = this.connections.command
    const ids = new Set(unfinished)
    let start = '-'
    for (;;) {
      const page = (await command.xpending(stream, group, start, '+', CLAIM_CHUNK, consumer)) as [
        string,
        ...unknown[],
      ][]
      for (const [id] of page) ids.add(id)
      if (page.length < CLAIM_CHUNK) break
      start = `(${page[page.length - 1][0]}`
    }
    if (ids.size > 0) await this.makeIdle([...ids])
    // Nothing pending on it: a consumer named after this process is of no more use to the group.
    else if (defaultConsumer) await command.xgroup('DELCONSUMER', stream, group, consumer)
  }

  /** Sets the entries' idle time to claimIdleMs: the next sweep of any consumer claims them. */
  private async makeIdle(ids: string[]): Promise<void> {
    const { stream, group, consumer, claimIdleMs } = this.options
    const command = this.connections.command
    await Promise.all(
      chunks(ids, CLAIM_CHUNK).map((chunk) =>
        command.call(
          'XCLAIM',
          stream,
          group,
          consumer,
          '0',
          ...chunk,
          'IDLE',
          String(claimIdleMs),
          'JUSTID',
        ),
      ),
    )
  }

  private async read(reader: Redis, max: number): Promise<Delivery<string>[]> {
    if (!this.groupReady) await this.createGroup(reader)
    try {
      return await this.readFrom(reader, max)
    } catch (err) {
      if (!isError(err, 'NOGROUP') || this.options.createGroup === false) throw err
      // The group or the stream is gone (a server restarted without persistence, XGROUP
      // DESTROY, DEL): create them again, as at the start.
      this.groupReady = false
      await this.createGroup(reader)
      return await this.readFrom(reader, max)
    }
  }

  private async createGroup(reader: Redis): Promise<void> {
    const { stream, group, createGroup } = this.options
    if (createGroup !== false) {
      try {
        await reader.xgroup('CREATE', stream, group, createGroup, 'MKSTREAM')
      } catch (err) {
        if (!isError(err, 'BUSYGROUP')) throw err
      }
    }
    this.groupReady = true
  }

  private async readFrom(reader: Redis, max: number): Promise<Delivery<string>[]> {
    const { stream, group, consumer, claimIdleMs, blockMs } = this.options
    // 1. This consumer's own pending entries that it does not hold, oldest first: a previous
    // life's (a restart under the same name), or those of a reply lost with the connection.
    // XPENDING lists them without counting a delivery; XCLAIM to itself returns them and counts
    // one (XREADGROUP … 0 would count one for the held entries too).
    while (this.pendingCursor !== undefined) {
      const start = this.pendingCursor === '0' ? '-' : `(${this.pendingCursor}`
      const rows = (await reader.xpending(stream, group, start, '+', max, consumer)) as [
        string,
        string,
        number,
        number,
      ][]
      if (rows.length === 0) {
        this.pendingCursor = undefined
        break
      }
      this.pendingCursor = rows[rows.length - 1][0]
      const counts = new Map<string, number>()
      for (const [id, , , deliveries] of rows) {
        if (!this.held.has(id)) counts.set(id, Number(deliveries) + 1)
      }
      if (counts.size === 0) continue
      const entries = readClaimEntries(
        await reader.callBuffer('XCLAIM', stream, group, consumer, '0', ...counts.keys()),
      )
      const deliveries = entries.map((entry) => this.deliver(entry, counts.get(entry.id) ?? 1))
      if (deliveries.length > 0) return deliveries
    }
    // 2. Entries idle longer than claimIdleMs, on any consumer of the group.
    if (this.rewind || this.claimCursor !== '0-0' || performance.now() >= this.nextSweep) {
      for (let calls = 0; calls < SWEEP_CALLS; calls++) {
        if (this.rewind) {
          this.rewind = false
          this.claimCursor = '0-0'
        }
        const { cursor, entries } = autoClaimReply(
          await reader.callBuffer(
            'XAUTOCLAIM',
            stream,
            group,
            consumer,
            claimIdleMs,
            this.claimCursor,
            'COUNT',
            max,
          ),
        )
        this.claimCursor = cursor
        if (cursor === '0-0') this.nextSweep = performance.now() + this.sweepEveryMs
        const deliveries = await this.counted(reader, entries)
        if (deliveries.length > 0) return deliveries
        if (cursor === '0-0' && !this.rewind) break
      }
    }
    // 3. New entries.
    const entries = readGroupEntries(
      await reader.xreadgroupBuffer(
        'GROUP',
        group,
        consumer,
        'COUNT',
        max,
        'BLOCK',
        blockMs,
        'STREAMS',
        stream,
        '>',
      ),
    )
    return entries.map((entry) => this.deliver(entry, 1))
  }

  /**
   * Claimed entries → deliveries counted by XPENDING. Skipped: entries this source
   * holds already, entries no longer pending on this consumer (acked meanwhile), and entries
   * deleted from the stream (acked here: there is nothing to handle).
   */
  private async counted(reader: Redis, entries: StreamEntry[]): Promise<Delivery<string>[]> {
    const { stream, group, consumer } = this.options
    const deleted = entries.filter((e) => e.fields === null && !this.held.has(e.id))
    const live = entries.filter((e) => e.fields !== null && !this.held.has(e.id))
    if (deleted.length > 0) await reader.xack(stream, group, ...deleted.map((e) => e.id))
    if (live.length === 0) return []
    const pipeline = reader.pipeline()
    for (const { id } of live) pipeline.xpending(stream, group, id, id, 1)
    const pending = results(await pipeline.exec())
    const out: Delivery<string>[] = []
    live.forEach((entry, i) => {
      const state = pendingOf(pending[i])
      if (state && state.consumer === consumer) {
        out.push(this.deliver(entry, Math.max(1, state.deliveries)))
      }
    })
    return out
  }

  private deliver(entry: StreamEntry, deliveries: number): Delivery<string> {
    const payload = (entry.fields && fieldValue(entry.fields, this.options.field)) ?? MISSING_FIELD
    this.held.add(entry.id)
    return { handle: entry.id, id: entry.id, payload, deliveries }
  }
}
