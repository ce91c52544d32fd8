import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { brokerUp } from '../support/brokers.js'
import { AMQP_URL, fixture, Rabbit, waitFor } from './support.js'

/*
 * Consumer processes (fixtures/consumer.mjs: 2 threads, a handler that journals each message it
 * handled to a file before returning) on one RabbitMQ queue. SIGKILL: RabbitMQ requeues what
 * the dead process had not acked, the other process takes it; duplicates only among those (≤ the
 * killed process's maxInFlight, its prefetch). SIGTERM: the process stops its queue and closes
 * its source: what it finished is acked, what it did not is back in the queue.
 */

const N = 3000
const MAX_IN_FLIGHT = 16

interface Consumer {
  child: ChildProcess
  journal: string
  out: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

describe.runIf(await brokerUp('rabbitmq'))('amqpSource in consumer processes', () => {
  let rabbit: Rabbit
  let dir: string
  const children: ChildProcess[] = []
  beforeAll(async () => {
    rabbit = await Rabbit.open()
    dir = mkdtempSync(join(tmpdir(), 'conveyor-amqp-'))
  })
  afterEach(() => {
    // Only the processes this test started, by pid.
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL')
    }
  })
  afterAll(async () => {
    await rabbit.close()
    rmSync(dir, { recursive: true, force: true })
  })

  async function start(queue: string, label: string): Promise<Consumer> {
    const journal = join(dir, `${queue}-${label}`)
    const child = spawn(
      process.execPath,
      [fixture('consumer.mjs'), AMQP_URL, queue, journal, String(MAX_IN_FLIGHT)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    children.push(child)
    let out = ''
    child.stdout!.on('data', (chunk) => {
      out += chunk
    })
    child.stderr!.on('data', (chunk) => {
      out += chunk
    })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    )
    await waitFor(() => out.includes('started'), `consumer ${label} to start`)
    return { child, journal, out: () => out, exited }
  }

  const handled = (c: Consumer): number[] =>
    existsSync(c.journal)
      ? readFileSync(c.journal, 'utf8').split('\n').filter(Boolean).map(Number)
      : []

  const messages = () => Array.from({ length: N }, (_, i) => ({ id: i + 1, slowMs: 1 }))

  it('SIGKILL of one of two consumers: the other takes over its unacked messages; duplicates only among those', async () => {
    const name = await rabbit.queue('amqp-kill')
    await rabbit.publish(name, messages())
    const a = await start(name, 'a')
    const b = await start(name, 'b')
    await waitFor(() => handled(a).length >= 400, 'a to handle 400')
    process.kill(a.child.pid!, 'SIGKILL')
    expect(await a.exited).toEqual({ code: null, signal: 'SIGKILL' })
    const covered = () => new Set([...handled(a), ...handled(b)]).size === N
    await waitFor(covered, 'every message handled by a or b', 60_000)
    process.kill(b.child.pid!, 'SIGTERM')
    expect(await b.exited).toEqual({ code: 0, signal: null })

    const [byA, byB] = [handled(a), handled(b)]
    expect(new Set(byA).size).toBe(byA.length)
    expect(new Set(byB).size).toBe(byB.length) // b, never killed, handled nothing twice
    const inA = new Set(byA)
    const duplicates = byB.filter((id) => inA.has(id))
    console.log(
      `SIGKILL: a handled ${byA.length}, b ${byB.length}, ${duplicates.length} duplicates (a's maxInFlight ${MAX_IN_FLIGHT})`,
    )
    // Only what a had not acked came again: at most its prefetch.
    expect(duplicates.length).toBeLessThanOrEqual(MAX_IN_FLIGHT)
    expect(byA.length + byB.length - duplicates.length).toBe(N)
    // What b gave back when it stopped (fetched, not handled) was all handled before.
    const left = (await rabbit.takeAll(name)).map((m) => (m.body as { id: number }).id)
    const all = new Set([...byA, ...byB])
    expect(left.filter((id) => !all.has(id))).toEqual([])
    await rabbit.waitForDepth(`${name}.dead`, 0)
  })

  it('SIGTERM under load: a graceful stop leaves nothing it finished pending, and loses nothing', async () => {
    const name = await rabbit.queue('amqp-term')
    await rabbit.publish(name, messages())
    const c = await start(name, 'c')
    await waitFor(() => handled(c).length >= 500, 'c to handle 500')
    process.kill(c.child.pid!, 'SIGTERM')
    expect(await c.exited).toEqual({ code: 0, signal: null })
    const report = JSON.parse(c.out().trim().split('\n').at(-1)!)
    const done = handled(c)
    expect(new Set(done).size).toBe(done.length)
    expect(report).toEqual({ completed: done.length, drained: true, unprocessed: 0 })
    const left = (await rabbit.takeAll(name)).map((m) => (m.body as { id: number }).id)
    const finished = new Set(done)
    expect(left.filter((id) => finished.has(id))).toEqual([]) // nothing finished left pending
    expect(new Set([...done, ...left]).size).toBe(N) // nothing lost
    expect(done.length + left.length).toBe(N)
    console.log(`SIGTERM: handled ${done.length}, ${left.length} back in the queue`)
  })
})
