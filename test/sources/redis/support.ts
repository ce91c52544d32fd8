import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { sleep, waitFor as wait } from '../../support/wait.js'

/** Absolute path of a file under test/sources/redis/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
}

export { sleep }

/** Polls until `condition` holds; throws with `what` after `timeoutMs`. */
export const waitFor = (
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> => wait(condition, what, { timeoutMs })

/** XADDs `{ n }` for n in [from, from + count) in pipelines; returns the entry ids, by n. */
export async function addMessages(
  redis: Redis,
  stream: string,
  count: number,
  from = 0,
): Promise<string[]> {
  const ids: string[] = []
  for (let start = from; start < from + count; start += 1000) {
    const pipeline = redis.pipeline()
    const end = Math.min(from + count, start + 1000)
    for (let n = start; n < end; n++) pipeline.xadd(stream, '*', 'data', JSON.stringify({ n }))
    for (const [err, id] of (await pipeline.exec()) ?? []) {
      if (err) throw err
      ids.push(id as string)
    }
  }
  return ids
}

/**
 * The group's pending count, consumers, and lag: 0 when its consumers have read every entry,
 * else 1. From the stream's last id and the group's: XINFO's own `lag` is null after a restart
 * that could not tell how many entries the group had read.
 */
export async function groupState(
  redis: Redis,
  stream: string,
  group: string,
): Promise<{ pending: number; lag: number; consumers: number }> {
  const pairs = (list: unknown[]) => {
    const info: Record<string, unknown> = {}
    for (let i = 0; i + 1 < list.length; i += 2) info[String(list[i])] = list[i + 1]
    return info
  }
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
  for (const g of groups) {
    const info = pairs(g)
    if (info.name !== group) continue
    const last = String(
      pairs((await redis.xinfo('STREAM', stream)) as unknown[])['last-generated-id'],
    )
    const delivered = String(info['last-delivered-id'])
    const unread =
      delivered === last ? [] : await redis.xrange(stream, `(${delivered}`, last, 'COUNT', 1)
    return {
      pending: Number(info.pending),
      lag: unread.length,
      consumers: Number(info.consumers),
    }
  }
  throw new Error(`no group ${group} on ${stream}`)
}

/** Ids pending in the group (on `consumer` only, if given). */
export async function pendingIds(
  redis: Redis,
  stream: string,
  group: string,
  consumer?: string,
): Promise<string[]> {
  const args: (string | number)[] = [stream, group, '-', '+', 100_000]
  if (consumer) args.push(consumer)
  const rows = (await redis.call('XPENDING', ...args)) as [string, ...unknown[]][]
  return rows.map((row) => row[0])
}

/** Counts of each n in a journal file (one n per line). */
export function readJournal(path: string): Map<number, number> {
  const counts = new Map<number, number>()
  let text = ''
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    return counts
  }
  for (const line of text.split('\n')) {
    if (line === '') continue
    const n = Number(line)
    counts.set(n, (counts.get(n) ?? 0) + 1)
  }
  return counts
}

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/**
 * A redis-server of this test's own, on a free port in a temp dir, with an append-only file
 * written on every command: a restart after SIGKILL keeps every acknowledged write. Started,
 * killed and started again by its pid only.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  static async start(dir: string): Promise<PrivateRedis> {
    const server = new PrivateRedis(await freePort(), dir)
    await server.start()
    return server
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    )
    this.child = child
    const probe = new Redis({ port: this.port, lazyConnect: true, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await waitFor(
        async () => {
          try {
            if (probe.status !== 'ready') await probe.connect()
            return (await probe.ping()) === 'PONG'
          } catch {
            return false
          }
        },
        `redis-server on port ${this.port}`,
        20_000,
      )
    } finally {
      probe.disconnect()
    }
  }

  /** SIGKILL, by pid; resolves once it exited. */
  async kill(): Promise<void> {
    const child = this.child
    this.child = undefined
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    process.kill(child.pid!, 'SIGKILL')
    await exited
  }
}

/** A consumer process (fixtures/consumer.mjs), its output, and how it ended. */
export class ConsumerProcess {
  readonly child: ChildProcess
  out = ''
  err = ''
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>

  constructor(args: {
    port: number
    stream: string
    group: string
    /** Default: the source's own (hostname-pid). */
    consumer?: string
    journal: string
    claimIdleMs: number
    maxInFlight: number
    costMs: number
  }) {
    this.child = spawn(process.execPath, [fixture('consumer.mjs'), JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.child.stdout?.on('data', (chunk) => {
      this.out += chunk
    })
    this.child.stderr?.on('data', (chunk) => {
      this.err += chunk
    })
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    )
  }

  /** Sends a signal to this process only (by pid). */
  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      process.kill(this.child.pid!, signal)
    }
  }
}

/** Until each of these processes has its reading connection open (named after its consumer). */
export async function waitForReaders(
  redis: Redis,
  processes: readonly { child: { pid?: number } }[],
): Promise<void> {
  const readers = processes.map((p) => `conveyor-lanes:${hostname()}-${p.child.pid}:reader`)
  await waitFor(async () => {
    const clients = String(await redis.client('LIST'))
    return readers.every((name) => clients.includes(` name=${name} `))
  }, 'every consumer reading')
}
