import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { brokerUp } from '../support/brokers.js'
import { SHARED_SERVER, sleep, stage, waitFor } from './support.js'

const example = fileURLToPath(
  new URL('../../../examples/sources/nats/consumer.js', import.meta.url),
)

function run(stream: string) {
  const child = spawn(process.execPath, [example], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NATS_URL: SHARED_SERVER, STREAM: stream },
  })
  let out = ''
  child.stdout.on('data', (chunk) => {
    out += chunk
  })
  child.stderr.on('data', (chunk) => {
    out += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  return { child, out: () => out, exited }
}

const started: ReturnType<typeof run>[] = []
afterEach(() => {
  // Runs after a timeout too: only the processes this test started, by their pids.
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null)
      process.kill(p.child.pid!, 'SIGKILL')
  }
})

describe.runIf(await brokerUp('nats'))('examples/sources/nats/consumer.js', () => {
  it('runs as written: two processes share the consumer, SIGTERM stops each cleanly', async () => {
    const s = await stage('nats-example')
    const processes = [run(s.stream), run(s.stream)]
    started.push(...processes)
    try {
      const N = 1000
      await s.publish(N)
      await waitFor(() => processes.every((p) => p.out().includes('consuming')), 'both started')
      const info = () => s.jsm.consumers.info(s.stream, 'order-workers')
      await waitFor(
        async () => {
          const i = await info()
          return i.num_pending === 0 && i.num_ack_pending === 0
        },
        'every order acked',
        120_000,
      )
      for (const p of processes) process.kill(p.child.pid!, 'SIGTERM')
      const codes = await Promise.race([
        Promise.all(processes.map((p) => p.exited)),
        sleep(30_000).then(() => {
          throw new Error(`SIGTERM did not end the processes: ${processes.map((p) => p.out())}`)
        }),
      ])
      expect(codes).toEqual([0, 0])
      const completed = processes.map(
        (p) => JSON.parse(p.out().trim().split('\n').at(-1) ?? '').completed as number,
      )
      // Both took part, and together they handled every order exactly once.
      expect(completed.every((n) => n > 0)).toBe(true)
      expect(completed[0] + completed[1]).toBe(N)
      expect((await info()).ack_floor.stream_seq).toBe(N)
    } finally {
      await s.drop()
    }
  })
})
