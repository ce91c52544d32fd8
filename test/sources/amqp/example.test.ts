import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { brokerUp } from '../support/brokers.js'
import { AMQP_URL, Rabbit, sleep, waitFor } from './support.js'

/*
 * The README's RabbitMQ example (examples/sources/amqp/consumer.js + handler.js) as written:
 * two consumer processes on one queue share its messages; SIGTERM stops each gracefully.
 * (test/examples.test.ts checks that the README shows these files verbatim.)
 */

const consumerJs = fileURLToPath(
  new URL('../../../examples/sources/amqp/consumer.js', import.meta.url),
)
const N = 2000

describe.runIf(await brokerUp('rabbitmq'))('examples/sources/amqp', () => {
  let rabbit: Rabbit
  const children: ChildProcess[] = []
  beforeAll(async () => {
    rabbit = await Rabbit.open()
  })
  afterEach(() => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL')
    }
  })
  afterAll(async () => {
    await rabbit.close()
  })

  it('runs as written: two processes share one queue, and stop on SIGTERM', async () => {
    // Declared as the example's source declares it, so that the test can publish first.
    const name = await rabbit.queue('amqp-example')
    const started = [0, 1].map(() => {
      const child = spawn(process.execPath, [consumerJs], {
        env: { ...process.env, AMQP_URL, QUEUE: name },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      children.push(child)
      let out = ''
      child.stdout!.on('data', (chunk) => {
        out += chunk
      })
      child.stderr!.on('data', (chunk) => {
        out += chunk
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
      return { child, out: () => out, exited }
    })
    await waitFor(
      async () => (await rabbit.channel.checkQueue(name)).consumerCount === 2,
      'both consumers on the queue',
    )
    await rabbit.publish(
      name,
      Array.from({ length: N }, (_, i) => ({ id: i + 1, email: `user${i + 1}@example.com` })),
    )
    await waitFor(async () => (await rabbit.depth(name)) === 0, 'the queue drained', 60_000)
    for (const { child } of started) process.kill(child.pid!, 'SIGTERM')
    const codes = await Promise.race([
      Promise.all(started.map((s) => s.exited)),
      sleep(30_000).then(() => started.map((s) => `still running: ${s.out()}`)),
    ])
    expect(codes, started.map((s) => s.out()).join('\n')).toEqual([0, 0])
    const completed = started.map((s) => JSON.parse(s.out().trim().split('\n').at(-1)!).completed)
    for (const c of completed) expect(c).toBeGreaterThan(0) // both had a share
    // Each message handled once; what a process held unfinished at SIGTERM is back in the queue.
    const left = await rabbit.takeAll(name)
    expect(completed[0] + completed[1] + left.length).toBe(N)
    await rabbit.waitForDepth(`${name}.dead`, 0)
  })
})
