import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/**
 * What users get is the packed tarball, not this repository: pack it (prepack builds),
 * install it into a fresh app, and run that app as ESM, as CommonJS, and as strict
 * TypeScript (module NodeNext). Dependencies come from npm's cache (`npm ci` filled it).
 */
const root = fileURLToPath(new URL('../..', import.meta.url))
const versionOf = (name: string) =>
  (
    JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string
    }
  ).version

let dir: string
let app: string

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

function run(file: string, args: string[] = []): unknown {
  const out = execFileSync(process.execPath, [...args, file], { cwd: app, encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').at(-1) ?? '')
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'conveyor-pack-'))
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], root)) as {
    filename: string
    files: { path: string }[]
  }[]
  const paths = packed.files.map((f) => f.path)
  expect(paths).toContain('dist/src/index.js')
  expect(paths).toContain('dist/src/worker.cjs')
  expect(paths).toContain('dist/workers/lane-entry.cjs')
  expect(paths).toContain('dist/workers/lane-task.js')
  expect(paths).toContain('dist/src/metrics/index.js')
  expect(paths).toContain('LICENSE')
  expect(paths.filter((p) => p.startsWith('dist/bench') || p.startsWith('test/'))).toEqual([])
  app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
  npm(
    [
      'install',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      join(dir, packed.filename),
      `typescript@${versionOf('typescript')}`,
      `@types/node@${versionOf('@types/node')}`,
      // The optional peer that conveyor-lanes/metrics needs.
      `prom-client@${versionOf('prom-client')}`,
    ],
    app,
  )
}, 180_000)

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('the packed package, installed into a fresh app', () => {
  it('runs from ESM', () => {
    writeFileSync(
      join(app, 'handler.mjs'),
      `import { defineHandler } from 'conveyor-lanes/worker'
export default defineHandler({ handle: (n) => n * 2 })
`,
    )
    writeFileSync(
      join(app, 'main.mjs'),
      `import { createQueue } from 'conveyor-lanes'
const queue = createQueue({ handler: new URL('./handler.mjs', import.meta.url), threads: 1 })
await queue.start()
let acked = 0
for (let i = 0; i < 100; i++) await queue.push(i, { ack: () => acked++ })
const doubled = await queue.run(21)
const report = await queue.stop()
console.log(JSON.stringify({ doubled, acked, completed: report.completed }))
`,
    )
    expect(run('main.mjs')).toEqual({ doubled: 42, acked: 100, completed: 101 })
  })

  it('exposes Prometheus metrics through conveyor-lanes/metrics', () => {
    writeFileSync(
      join(app, 'metrics.mjs'),
      `import { createQueue } from 'conveyor-lanes'
import { registerQueueMetrics } from 'conveyor-lanes/metrics'
import { Registry } from 'prom-client'
const registry = new Registry()
const queue = createQueue({ handler: new URL('./handler.mjs', import.meta.url), threads: 1 })
registerQueueMetrics(queue, { registry })
await queue.start()
for (let i = 0; i < 64; i++) await queue.push(i)
await queue.onIdle()
const text = await registry.metrics()
await queue.stop()
const value = (name) => Number(text.match(new RegExp('^' + name + ' (.*)$', 'm'))?.[1])
console.log(JSON.stringify({
  pushed: value('conveyor_messages_pushed_total'),
  sampled: value('conveyor_service_seconds_count'),
  p50: queue.metrics().service.p50 > 0,
}))
`,
    )
    expect(run('metrics.mjs')).toEqual({ pushed: 64, sampled: 4, p50: true })
  })

  it('batches results through conveyor-lanes/executors', () => {
    writeFileSync(
      join(app, 'executors.mjs'),
      `import { createQueue } from 'conveyor-lanes'
import { BulkExecutor } from 'conveyor-lanes/executors'
const batches = []
const sink = new BulkExecutor(async (items) => { batches.push(items.length) }, { maxItems: 10 })
const queue = createQueue({ handler: new URL('./handler.mjs', import.meta.url), threads: 1 })
await queue.start()
for (let i = 0; i < 25; i++) await queue.push(i, { ack: () => void sink.add(i) })
await queue.onIdle()
await queue.stop()
await sink.close()
console.log(JSON.stringify({ batches }))
`,
    )
    expect(run('executors.mjs')).toEqual({ batches: [10, 10, 5] })
  })

  // Issue 9's acceptance: the installed command, on a user handler and an NDJSON file, with
  // only the package's runtime dependencies (no vega, no tinybench).
  it('runs conveyor tune from the installed bin and recommends within 5 % of the best', () => {
    writeFileSync(
      join(app, 'orders.ndjson'),
      Array.from({ length: 20 }, (_, id) => JSON.stringify({ id })).join('\n'),
    )
    const out = execFileSync(
      join(app, 'node_modules/.bin/conveyor'),
      [
        'tune',
        '--handler',
        'handler.mjs',
        '--messages',
        'orders.ndjson',
        '--threads',
        '1,2',
        '--lane-bytes',
        '64k',
        '--duration',
        '0.6',
        '--warmup',
        '0.1',
        '--json',
      ],
      { cwd: app, encoding: 'utf8' },
    )
    const result = JSON.parse(out) as {
      configurations: { threads: number; throughput: number }[]
      recommendation: { threads: number; throughput: number }
    }
    expect(result.configurations.map((c) => c.threads)).toEqual([1, 2])
    const best = Math.max(...result.configurations.map((c) => c.throughput))
    expect([1, 2]).toContain(result.recommendation.threads)
    expect(result.recommendation.throughput).toBeGreaterThanOrEqual(best * 0.95)
  })

  it('runs from CommonJS: require for the handler, import() for the queue', () => {
    writeFileSync(
      join(app, 'handler.cjs'),
      `const { defineHandler } = require('conveyor-lanes/worker')
module.exports = defineHandler({ handle: (n) => n + 1 })
`,
    )
    writeFileSync(
      join(app, 'main.cjs'),
      `const path = require('node:path')
async function main() {
  const { createQueue } = await import('conveyor-lanes')
  const queue = createQueue({ handler: path.join(__dirname, 'handler.cjs'), threads: 1 })
  await queue.start()
  const next = await queue.run(41)
  await queue.stop()
  console.log(JSON.stringify({ next }))
}
main()
`,
    )
    expect(run('main.cjs')).toEqual({ next: 42 })
  })

  it('type-checks and runs as strict TypeScript (module NodeNext)', () => {
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          target: 'ES2022',
          types: ['node'],
          outDir: 'out',
        },
        files: ['handler.mts', 'main.mts'],
      }),
    )
    writeFileSync(
      join(app, 'handler.mts'),
      `import { defineHandler, type HandlerContext } from 'conveyor-lanes/worker'
interface Order { id: number; email: string }
export default defineHandler<Order, string>({
  handle(order: Order, ctx: HandlerContext): string {
    return \`\${order.id}:\${order.email}:\${ctx.attempt}\`
  },
})
`,
    )
    writeFileSync(
      join(app, 'main.mts'),
      `import { createQueue, handlerUrl, isConveyorError, type QueueStats, type StopReport } from 'conveyor-lanes'
// Queue<Order, string>, inferred from the handler module's own types.
const queue = createQueue({
  handler: handlerUrl<typeof import('./handler.mjs')>('./handler.mjs', import.meta.url),
  threads: 1,
})
queue.on('dead-letter', ({ message }) => console.error(message.email))
await queue.start()
const out: string = await queue.run({ id: 7, email: 'a@example.com' })
// @ts-expect-error an order is required
await queue.push('not an order').catch(() => {})
const stats: QueueStats = queue.stats()
const refused = await queue.push(undefined as never).catch((err: unknown) => isConveyorError(err, 'ENCODE_FAILED'))
const report: StopReport = await queue.stop()
console.log(JSON.stringify({ out, threads: stats.threads, refused, pushed: report.pushed }))
`,
    )
    execFileSync(process.execPath, [join(app, 'node_modules/typescript/bin/tsc'), '-p', app], {
      cwd: app,
      encoding: 'utf8',
    })
    expect(run('out/main.mjs')).toEqual({
      out: '7:a@example.com:1',
      threads: 1,
      refused: true,
      pushed: 2,
    })
  })
})
