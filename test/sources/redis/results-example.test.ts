import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { brokerUp, uniqueName } from '../support/brokers.js'
import { examplePath, killLeft, startExample } from '../support/example-process.js'
import { groupState, sleep, waitFor, waitForReaders } from './support.js'

const example = examplePath('redis/results.js')
const start = (env: NodeJS.ProcessEnv) => startExample(example, env)

const digestOf = (id: number) =>
  createHash('sha256').update(`${id}:u${id}@example.com`).digest('hex')

/** An XINFO reply's [name, value, …] list as an object. */
function pairs(list: unknown[]): Record<string, unknown> {
  const info: Record<string, unknown> = {}
  for (let i = 0; i + 1 < list.length; i += 2) info[String(list[i])] = list[i + 1]
  return info
}

describe.runIf(await brokerUp('redis'))('examples/sources/redis/results.js', () => {
  let admin: Redis
  beforeAll(() => {
    admin = new Redis({ host: '127.0.0.1', port: 6379 })
  })
  afterAll(() => admin.disconnect())

  /**
   * Two processes of the example on a fresh input stream, `count` orders added once both read;
   * `during` runs while they work. From then until every input is acked, an atomic snapshot
   * (MULTI) every 20 ms checks ack-after-write: the inputs settled (read by the group and not
   * pending: acked or dead-lettered) never outnumber the results in the output stream. Returns
   * what the test checks after SIGTERM to both.
   */
  async function run(
    count: number,
    during?: (processes: ReturnType<typeof start>[], output: string) => Promise<void>,
  ) {
    const stream = uniqueName('redis-results')
    const output = `${stream}:out`
    const env = { ...process.env, STREAM: stream, OUT_STREAM: output }
    const processes = [start(env), start(env)]
    try {
      await waitForReaders(admin, processes)
      const pipeline = admin.pipeline()
      for (let id = 0; id < count; id++) {
        pipeline.xadd(stream, '*', 'data', JSON.stringify({ id, email: `u${id}@example.com` }))
      }
      // Input entry id → how many entries up to it: the group has read up to last-delivered-id.
      const read = new Map<string, number>([['0-0', 0]])
      for (const [error, id] of (await pipeline.exec()) ?? []) {
        if (error) throw error
        read.set(id as string, read.size)
      }
      const early: string[] = []
      const snapshot = async () => {
        const replies = await admin
          .multi()
          .xinfo('GROUPS', stream)
          .xlen(output)
          .xlen(`${stream}:dead`)
          .exec()
        const [groups, written, dead] = (replies ?? []).map(([error, value]) => {
          if (error) throw error
          return value
        }) as [unknown[][], number, number]
        const info = pairs(groups.find((g) => pairs(g).name === 'billing') ?? [])
        const delivered = read.get(String(info['last-delivered-id'])) ?? Number.NaN
        const pending = Number(info.pending)
        const settled = delivered - pending - dead
        if (!(settled <= written)) early.push(`${settled} acked, ${written} written`)
        return { done: pending === 0 && delivered === count, written }
      }
      const watching = waitFor(async () => (await snapshot()).done, 'every input acked')
      await during?.(processes, output)
      await watching
      expect(early, 'inputs acked before their results were written').toEqual([])

      for (const p of processes) p.child.kill('SIGTERM')
      const codes = await Promise.all(processes.map((p) => p.exited))
      const stderr =
        processes
          .map((p) => p.err().trim())
          .filter(Boolean)
          .join('\n') || 'empty'
      expect(codes, stderr).toEqual([0, 0])

      const digests = new Map<number, string[]>()
      for (const [, fields] of await admin.xrange(output, '-', '+')) {
        const entry: Record<string, string> = {}
        for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i]] = fields[i + 1]
        const id = Number(entry.id)
        // The input's entry id, as the envelope named it: the read order of the n-th input.
        const named = read.get(entry.entry) === id + 1 ? entry.digest : `wrong entry ${entry.entry}`
        digests.set(id, [...(digests.get(id) ?? []), named])
      }
      const results = { missing: [] as number[], duplicated: [] as number[], wrong: [] as number[] }
      for (let id = 0; id < count; id++) {
        const found = digests.get(id) ?? []
        if (found.length === 0) results.missing.push(id)
        if (found.length > 1) results.duplicated.push(id)
        if (found.some((d) => d !== digestOf(id))) results.wrong.push(id)
      }
      return {
        results,
        stderr,
        extra: [...digests.keys()].filter((id) => !(id >= 0 && id < count)),
        outputLength: await admin.xlen(output),
        reports: processes.map((p) => p.report<{ written: number; completed: number }>()),
        dead: await admin.xlen(`${stream}:dead`),
        group: await groupState(admin, stream, 'billing'),
        consumers: ((await admin.xinfo('CONSUMERS', stream, 'billing')) as unknown[][]).map(
          (c) => ({ name: pairs(c).name, pending: pairs(c).pending }),
        ),
      }
    } finally {
      killLeft(processes)
      await admin.del(stream, `${stream}:dead`, output)
    }
  }

  it('writes one result per input to the output stream, acked after the write', async () => {
    const count = 2000
    const { results, stderr, extra, outputLength, reports, dead, group } = await run(count)
    // No crash, so no redelivery: exactly one result per input, and it is that input's digest.
    expect(stderr).toBe('empty')
    expect(results, `results by input; the consumers' stderr: ${stderr}`).toEqual({
      missing: [],
      duplicated: [],
      wrong: [],
    })
    expect({ extra, outputLength }).toEqual({ extra: [], outputLength: count })
    // Both processes took their share, and together wrote each result once.
    expect(reports.map((r) => r.written > 0)).toEqual([true, true])
    expect(reports.reduce((sum, r) => sum + r.written, 0)).toBe(count)
    expect(reports.reduce((sum, r) => sum + r.completed, 0)).toBe(count)
    // Nothing failed, and the default consumer names (host-pid) left the group on close().
    expect(dead).toBe(0)
    expect(group).toEqual({ pending: 0, lag: 0, consumers: 0 })
  })

  it('on SIGTERM mid-run writes and acks what it finished; the other takes the rest', async () => {
    const count = 10_000
    let first: { code: number | null; written: number; consumer: string } | undefined
    const { results, stderr, outputLength, reports, dead, group, consumers } = await run(
      count,
      async ([p], output) => {
        await waitFor(async () => (await admin.xlen(output)) >= count / 4, 'a quarter written')
        p.child.kill('SIGTERM')
        const consumer = `${hostname()}-${p.child.pid}`
        first = { code: await p.exited, written: p.report<{ written: number }>().written, consumer }
      },
    )
    expect(first?.code, stderr).toBe(0)
    expect(first?.written).toBeGreaterThan(0)
    // Its last results were written, then acked, before close(): none came back to the other
    // process to be written again (close() gave back only what it had not finished), and no
    // ack was refused for coming after close() (SOURCE_CLOSED, a warning on stderr).
    expect(stderr).toBe('empty')
    expect(results).toEqual({ missing: [], duplicated: [], wrong: [] })
    expect(outputLength).toBe(count)
    expect(reports.reduce((sum, r) => sum + r.written, 0)).toBe(count)
    expect(dead).toBe(0)
    // The survivor left; the first had entries pending at close(), so its name stays in the
    // group (the source deletes only a consumer with nothing pending), holding nothing now.
    expect(group).toEqual({ pending: 0, lag: 0, consumers: 1 })
    expect(consumers).toEqual([{ name: first?.consumer, pending: 0 }])
  })

  it('when Redis refuses the stream for good, says why, stops in order and exits 1', async () => {
    const stream = uniqueName('redis-results-wrongtype')
    await admin.set(stream, 'not a stream')
    const p = start({ STREAM: stream, OUT_STREAM: `${stream}:out` })
    try {
      const code = await Promise.race([
        p.exited,
        sleep(30_000).then(() => 'still running (a hang)' as const),
      ])
      expect(code, p.err()).toBe(1)
      expect(p.err()).toMatch(/WRONGTYPE/)
      // The orderly stop ran: its summary is the last line.
      expect(p.report()).toEqual({ written: 0, completed: 0 })
    } finally {
      killLeft([p])
      await admin.del(stream)
    }
  })
})
