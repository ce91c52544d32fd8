import { createConnection } from 'node:net'

/** How to start each broker this project's tests use (the same commands as .ci/run). */
const HOW_TO_START = {
  redis: 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
  nats: 'nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/nats-js &',
  rabbitmq: 'rabbitmq-server -detached',
} as const

export type Broker = keyof typeof HOW_TO_START

const PORTS: Record<Broker, number> = { redis: 6379, nats: 4222, rabbitmq: 5672 }

function answers(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Whether the broker answers on 127.0.0.1. Without it, in CI (CI=true) this throws: a broker
 * test must never pass by skipping there. Elsewhere it returns false and says how to start it,
 * for `describe.runIf(await brokerUp('redis'))`.
 */
export async function brokerUp(broker: Broker): Promise<boolean> {
  if (await answers(PORTS[broker])) return true
  const message = `${broker} does not answer on 127.0.0.1:${PORTS[broker]}; start it with: ${HOW_TO_START[broker]}`
  if (process.env.CI === 'true') throw new Error(`CI=true and ${message}`)
  console.warn(`skipping the ${broker} tests: ${message}`)
  return false
}

/** A name no other test run uses: streams, groups, subjects, queues. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
}
