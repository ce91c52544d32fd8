import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'
import { createQueue, type Queue } from '../../src/index.js'
import { type RedisSource, redisSource } from '../../src/sources/redis/index.js'
import type { BenchContext, Case, Sampling, Suite } from '../harness.js'
import { WORK_HANDLER } from '../support/cases.js'
import { asciiMessages } from '../support/messages.js'
import { plainLoop } from '../support/redis-loop.js'
import { calibrate, measureNsPerRound, ROUNDS_ENV, roundsFor } from '../support/work.js'

/**
 * Issue 10's benchmark, side by side in one run: a Redis stream consumed through a consumer
 * group with a CPU-bound handler (~200 µs of hashing per message, bench/support/work.ts) by
 *  1. redisSource → this queue, 2 worker threads (the main thread only moves messages);
 *  2. the plain ioredis loop a user writes today (XREADGROUP 32, the handler on each entry on the
 *     main thread, XACK the batch), in the bench process: target conveyor ≥ 1.7× it;
 *  3. that loop in 2 processes, consumers of the same group.
 * Each case gets a fresh stream holding a backlog, and consumes it steadily from setup to
 * teardown; a sample counts the entries acked in the group (XINFO GROUPS: entries-read −
 * pending) over ~targetMs, so producing is never measured and every case is counted the same
 * way. A sample fails if the backlog ran dry. Needs Redis (REDIS_URL, default
 * redis://127.0.0.1:6379); opt-in: `npm run bench -- --filter redis-source`.
 */
const COST_US = 200
const THREADS = 2
const PROCESSES = 2
const MESSAGE_BYTES = 64
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const CONVEYOR = `redisSource → conveyor, ${THREADS} threads`
const LOOP = 'ioredis loop, 1 process'
const LOOPS = `ioredis loop, ${PROCESSES} processes`
const GROUP = `redis stream, cpu=${COST_US}us`

function sizes(quick: boolean) {
  // The backlog outlasts a case's pass (warm-up and samples) at 2 × 1e6/COST_US msg/s.
  return quick ? { targetMs: 250, backlog: 20_000 } : { targetMs: 500, backlog: 60_000 }
}

let streams = 0

async function connect(): Promise<Redis> {
  const { Redis } = await import('ioredis')
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  try {
    await redis.connect()
  } catch (err) {
    redis.disconnect()
    throw new Error(`the redis source suite needs Redis at ${REDIS_URL}: ${(err as Error).message}`)
  }
  return redis
}

/** A stream of its own for one pass of one case, holding `backlog` messages, and its group. */
async function fillStream(redis: Redis, backlog: number): Promise<string> {
  const stream = `conveyor-bench:redis-source:${process.pid}:${++streams}`
  const messages = asciiMessages(1024, MESSAGE_BYTES)
  for (let start = 0; start < backlog; start += 1000) {
    const pipeline = redis.pipeline()
    for (let i = start; i < Math.min(backlog, start + 1000); i++) {
      pipeline.xadd(stream, '*', 'data', messages[i & 1023])
    }
    await pipeline.exec()
  }
  await redis.xgroup('CREATE', stream, 'bench', '0')
  return stream
}

/** Entries the group acked so far, and how many it has not read yet. */
async function progress(redis: Redis, stream: string): Promise<{ acked: number; lag: number }> {
  const [group] = (await redis.xinfo('GROUPS', stream)) as unknown[][]
  const info: Record<string, unknown> = {}
  for (let i = 0; i + 1 < group.length; i += 2) info[String(group[i])] = group[i + 1]
  return {
    acked: Number(info['entries-read']) - Number(info.pending),
    lag: Number(info.lag),
  }
}

/**
 * The loop runs the work on the main thread beside ioredis: it must cost what the calibration
 * (and so the workers) says, or the comparison measures something else (see work()).
 */
function checkWorkUnslowed(): void {
  const now = measureNsPerRound()
  const calibrated = calibrate().nsPerRound
  if (now > 2 * calibrated) {
    throw new Error(
      `the work runs ${(now / calibrated).toFixed(1)}× slower on the main thread once ioredis is loaded (${now.toFixed(0)} vs ${calibrated.toFixed(0)} ns/round): the loop baseline would not be comparable`,
    )
  }
}

/**
 * A case whose consumers run from setup to teardown: `start` launches them on the stream,
 * `stop` ends them. A sample is the group's acks over ~targetMs.
 */
function streamCase(
  meta: Pick<Case, 'name' | 'group' | 'params' | 'conveyor' | 'targets'>,
  quick: boolean,
  start: (stream: string) => Promise<void>,
  stop: () => Promise<void>,
): Case {
  const { targetMs, backlog } = sizes(quick)
  let redis: Redis | undefined
  let stream: string | undefined
  return {
    ...meta,
    async setup() {
      redis = await connect()
      stream = await fillStream(redis, backlog)
      await start(stream)
      // Running before the first sample: its first entries acked.
      const until = performance.now() + 30_000
      while ((await progress(redis, stream)).acked === 0) {
        if (performance.now() > until) throw new Error(`${meta.name}: nothing acked in 30 s`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    async run() {
      const before = await progress(redis!, stream!)
      await new Promise((resolve) => setTimeout(resolve, targetMs))
      const after = await progress(redis!, stream!)
      if (after.lag === 0) {
        throw new Error(`the backlog of ${backlog} messages ran dry: raise it (sizes())`)
      }
      return after.acked - before.acked
    },
    async teardown() {
      try {
        await stop()
      } finally {
        if (redis && stream) await redis.del(stream, `${stream}:dead`)
        redis?.disconnect()
      }
    },
  }
}

function conveyorCase(quick: boolean, rounds: number): Case {
  let queue: Queue | undefined
  let source: RedisSource<string> | undefined
  let consuming: Promise<unknown> | undefined
  let failure: Error | undefined
  return streamCase(
    {
      name: CONVEYOR,
      group: GROUP,
      conveyor: true,
      params: { impl: 'conveyor', threads: THREADS, costUs: COST_US, processes: 1 },
      targets: [{ label: `≥ 1.7× the plain loop`, peer: LOOP, atLeast: 1.7 }],
    },
    quick,
    async (stream) => {
      queue = createQueue({
        handler: WORK_HANDLER,
        threads: THREADS,
        codec: 'string',
        env: { [ROUNDS_ENV]: String(rounds) },
      })
      queue.on('dead-letter', ({ error }) => {
        failure ??= error
      })
      await queue.start()
      source = redisSource<string>({
        redis: REDIS_URL,
        stream,
        group: 'bench',
        decode: (payload) => payload.toString('latin1'),
      })
      source.on('error', (error) => {
        failure ??= error
      })
      consuming = queue.consume(source).catch((error: Error) => {
        failure ??= error
      })
    },
    async () => {
      await queue?.stop({ timeoutMs: 5000 })
      await source?.close()
      await consuming
      if (failure) throw failure
    },
  )
}

function loopCase(quick: boolean, rounds: number): Case {
  let redis: Redis | undefined
  let running: Promise<number> | undefined
  let stopping = false
  return streamCase(
    {
      name: LOOP,
      group: GROUP,
      params: { impl: 'ioredis loop', threads: 1, costUs: COST_US, processes: 1 },
    },
    quick,
    async (stream) => {
      redis = await connect()
      checkWorkUnslowed()
      stopping = false
      running = plainLoop(
        redis,
        { stream, group: 'bench', consumer: 'loop', rounds },
        () => stopping,
      )
    },
    async () => {
      stopping = true
      try {
        await running
      } finally {
        redis?.disconnect()
      }
    },
  )
}

const LOOP_PROCESS = fileURLToPath(new URL('../workers/redis-loop.js', import.meta.url))

function processesCase(quick: boolean, rounds: number): Case {
  let children: ChildProcess[] = []
  return streamCase(
    {
      name: LOOPS,
      group: GROUP,
      params: { impl: 'ioredis loop', threads: 1, costUs: COST_US, processes: PROCESSES },
    },
    quick,
    async (stream) => {
      children = Array.from({ length: PROCESSES }, (_, i) =>
        spawn(
          process.execPath,
          [
            LOOP_PROCESS,
            JSON.stringify({ url: REDIS_URL, stream, group: 'bench', consumer: `p${i}`, rounds }),
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        ),
      )
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve, reject) => {
              child.once('exit', (code) => reject(new Error(`a loop process exited (${code})`)))
              child.stdout?.on('data', (chunk: Buffer) => {
                if (chunk.toString().includes('ready')) resolve()
              })
            }),
        ),
      )
    },
    async () => {
      // Only the processes this case started, by their pids.
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve()
              child.once('exit', () => resolve())
              child.kill('SIGTERM')
            }),
        ),
      )
      children = []
    },
  )
}

export const redisSourceSuite: Suite = {
  name: 'redis-source',
  description: `Redis stream → ${COST_US} µs CPU handler: redisSource + conveyor (${THREADS} threads) vs the plain ioredis XREADGROUP/XACK loop in 1 and ${PROCESSES} processes (needs Redis; opt-in: --filter redis-source)`,
  optIn: true,
  sampling({ quick }: BenchContext): Partial<Sampling> {
    // Samples are timed windows: a count of samples, no time budget. The warm-up lets JIT,
    // lanes and connections settle after setup.
    return quick
      ? { warmupIterations: 1, warmupTime: 0, iterations: 4, time: 0 }
      : { warmupIterations: 2, warmupTime: 0, iterations: 12, time: 0 }
  },
  info() {
    const c = calibrate()
    return {
      'work calibration': `${c.nsPerRound.toFixed(1)} ns/round on main; ${COST_US} µs = ${roundsFor(COST_US)} rounds`,
      redis: REDIS_URL,
    }
  },
  cases({ quick }: BenchContext): Case[] {
    const rounds = roundsFor(COST_US)
    return [conveyorCase(quick, rounds), loopCase(quick, rounds), processesCase(quick, rounds)]
  },
}
