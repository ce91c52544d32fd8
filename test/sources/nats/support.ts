import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream'
import { connect, createInbox, type NatsConnection } from '@nats-io/transport-node'
import { sleep, waitFor as wait } from '../../support/wait.js'
import { uniqueName } from '../support/brokers.js'

export const SHARED_SERVER = '127.0.0.1:4222'

/** Absolute path of a file under test/sources/nats/fixtures. */
export function fixture(name: string): string {
  return fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
}

export { sleep }

/** Polls until `condition` holds; a condition that throws (not created yet) counts as not yet. */
export const waitFor = (
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 60_000,
): Promise<void> => wait(condition, what, { timeoutMs, pollMs: 50, throwsMeanNotYet: true })

/** An admin connection with a unique stream (`<name>.in`) and consumer name; cleaned up by drop(). */
export interface Stage {
  nc: NatsConnection
  js: JetStreamClient
  jsm: JetStreamManager
  stream: string
  subject: string
  consumer: string
  /** The dead-letter stream the source creates with createConsumer. */
  deadStream: string
  deadSubject: string
  /** Messages `{ id, ...extra(id) }` with ids from..to-1, in order (stream sequence = id + 1). */
  publish(count: number, extra?: (id: number) => Record<string, unknown>): Promise<void>
  info(): Promise<ConsumerInfo>
  /**
   * One message straight from the durable consumer (`no_wait`), as a competing consumer would
   * get it: its ack subject, or undefined when JetStream has none to give.
   */
  pullOne(): Promise<{ reply: string; respond(payload: string): boolean } | undefined>
  /** The dead letters: each payload, decoded, with its headers. */
  deadLetters(): Promise<{ value: unknown; headers: Record<string, string> }[]>
  drop(): Promise<void>
}

export async function stage(prefix: string, servers = SHARED_SERVER): Promise<Stage> {
  const nc = await connect({ servers, maxReconnectAttempts: -1, name: 'conveyor-test-admin' })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const stream = uniqueName(prefix).replace(/[^A-Za-z0-9_-]/g, '_')
  const subject = `${stream}.in`
  await jsm.streams.add({ name: stream, subjects: [subject] })
  let next = 0
  return {
    nc,
    js,
    jsm,
    stream,
    subject,
    consumer: 'workers',
    deadStream: `${stream}_DEAD`,
    deadSubject: `${stream}.dead`,
    async publish(count, extra) {
      const until = next + count
      while (next < until) {
        const chunk: Promise<unknown>[] = []
        for (; next < until && chunk.length < 500; next++) {
          chunk.push(js.publish(subject, JSON.stringify({ id: next, ...extra?.(next) })))
        }
        await Promise.all(chunk)
      }
    },
    info: () => jsm.consumers.info(stream, 'workers'),
    async pullOne() {
      const reply = await nc
        .request(
          `$JS.API.CONSUMER.MSG.NEXT.${stream}.workers`,
          JSON.stringify({ batch: 1, no_wait: true }),
          // Not the shared reply inbox: a JetStream message names its own subject, not the inbox.
          { timeout: 2000, noMux: true, reply: createInbox() },
        )
        .catch(() => undefined)
      if (!reply?.reply?.startsWith('$JS.ACK.')) return undefined
      return { reply: reply.reply, respond: (payload: string) => reply.respond(payload) }
    },
    async deadLetters() {
      const letters: { value: unknown; headers: Record<string, string> }[] = []
      let info: Awaited<ReturnType<typeof jsm.streams.info>>
      try {
        info = await jsm.streams.info(`${stream}_DEAD`)
      } catch {
        return letters
      }
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(`${stream}_DEAD`, { seq })
        if (!m) continue
        const headers: Record<string, string> = {}
        for (const [k, v] of m.header) headers[k] = v.join(',')
        let value: unknown = m.string()
        try {
          value = JSON.parse(value as string)
        } catch {} // the undecodable one: its raw text
        letters.push({ value, headers })
      }
      return letters
    },
    async drop() {
      await jsm.streams.delete(stream).catch(() => {})
      await jsm.streams.delete(`${stream}_DEAD`).catch(() => {})
      await nc.close()
    },
  }
}

/** Reads a journal file: lines `<what> <id> <pid>`. */
export function readJournal(path: string): { what: string; id: number; pid: number }[] {
  if (!existsSync(path)) return []
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [what, id, pid] = line.split(' ')
      return { what, id: Number(id), pid: Number(pid) }
    })
}

/** How often each id appears among the journal's `what` lines. */
export function counts(path: string, what: string): Map<number, number> {
  const seen = new Map<number, number>()
  for (const line of readJournal(path)) {
    if (line.what === what) seen.set(line.id, (seen.get(line.id) ?? 0) + 1)
  }
  return seen
}

export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A private nats-server (JetStream, its own store directory), killed by its pid only. */
export class PrivateServer {
  private child: ChildProcess | undefined
  constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn(
      'nats-server',
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir],
      { stdio: 'ignore' },
    )
    this.child = child
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`nats-server exited (${child.exitCode})`)
        try {
          const nc = await connect({ servers: this.url, reconnect: false })
          await jetstreamManager(nc)
          await nc.close()
          return true
        } catch {
          return false
        }
      },
      `the private nats-server on ${this.url}`,
      20_000,
    )
  }

  /** Kills the server (this test's own process, by pid) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    process.kill(child.pid!, signal)
    await exited
    this.child = undefined
  }
}

/** A child process running test/sources/nats/fixtures/consumer.mjs. */
export interface ConsumerChild {
  child: ChildProcess
  out: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export function startConsumer(env: Record<string, string>): ConsumerChild {
  const child = spawn(process.execPath, [fixture('consumer.mjs')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  })
  let out = ''
  child.stdout?.on('data', (chunk) => {
    out += chunk
  })
  child.stderr?.on('data', (chunk) => {
    out += chunk
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, out: () => out, exited }
}

/** Kills a child this test started, by its pid (never by name). */
export async function stopChild(c: ConsumerChild, signal: NodeJS.Signals = 'SIGKILL') {
  if (c.child.exitCode === null && c.child.signalCode === null) process.kill(c.child.pid!, signal)
  return c.exited
}
