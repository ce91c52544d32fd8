import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

/**
 * `conveyor tune` end to end on real worker threads. Short runs (a few seconds each): the
 * assertions are about structure and counts, never about how fast this machine is.
 */
const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))
const ECHO = fixture('echo.mjs')
const FLAKY = fixture('flaky-orders.mjs')
const ORDERS = fixture('tune-orders.ndjson')
const tmp = mkdtempSync(join(tmpdir(), 'conveyor-tune-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

function conveyor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'tune', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Short: one repeat slice of 0.2 s, a 0.1 s warm-up. */
const QUICK = ['--duration', '0.6', '--warmup', '0.1']

describe('conveyor tune', () => {
  it('--json: one document with every configuration, and a recommendation near the best', () => {
    const chart = join(tmp, 'chart.svg')
    const r = conveyor(
      '--handler',
      ECHO,
      '--messages',
      ORDERS,
      '--threads',
      '1,2',
      '--duration',
      '1',
      '--warmup',
      '0.1',
      '--chart',
      chart,
      '--json',
    )
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) // nothing but the document on stdout
    expect(result.messages).toMatchObject({ source: 'ndjson', from: ORDERS, count: 100 })
    expect(result.messages.largestBytes).toBeGreaterThan(20)
    expect(result.settings).toMatchObject({
      threads: [1, 2],
      laneBytes: [65536, 1048576],
      durationS: 1,
      repeats: 3,
      codec: 'json',
      attempts: 1,
      withinBest: 0.97,
    })
    expect(result.cpus.count).toBeGreaterThanOrEqual(1)
    expect(result.skipped).toEqual([])
    expect(result.firstFailure).toBeNull()
    const configs = result.configurations as {
      threads: number
      laneBytes: number
      throughput: number
      throughputs: number[]
      serviceMs: { p50: number; p99: number }
      latencyMs: { p50: number; p99: number }
      mainThreadUtilisation: number
      finished: number
      failed: number
      deadLettered: number
      samples: number
    }[]
    expect(configs.map((c) => [c.threads, c.laneBytes])).toEqual([
      [1, 65536],
      [2, 65536],
      [1, 1048576],
      [2, 1048576],
    ])
    for (const c of configs) {
      expect(c.throughputs).toHaveLength(3)
      expect(c.throughput).toBeGreaterThan(0)
      expect(c.finished).toBeGreaterThan(0)
      expect(c.failed).toBe(0)
      expect(c.deadLettered).toBe(0)
      expect(c.samples).toBeGreaterThan(0)
      expect(c.serviceMs.p99).toBeGreaterThanOrEqual(c.serviceMs.p50)
      expect(c.latencyMs.p99).toBeGreaterThanOrEqual(c.latencyMs.p50)
      expect(c.mainThreadUtilisation).toBeGreaterThan(0)
      expect(c.mainThreadUtilisation).toBeLessThanOrEqual(1)
    }
    const rec = result.recommendation
    const best = Math.max(...configs.map((c) => c.throughput))
    const chosen = configs.find((c) => c.threads === rec.threads && c.laneBytes === rec.laneBytes)
    expect(chosen, 'the recommendation is one of the swept configurations').toBeDefined()
    expect(chosen!.throughput).toBeGreaterThanOrEqual(best * 0.95)
    expect(rec.throughput).toBe(chosen!.throughput)
    expect(rec.best.throughput).toBe(best)
    expect(rec.reason).toMatch(/^\d threads?, (64 KiB|1 MiB) lanes: /)
    const svg = readFileSync(chart, 'utf8')
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    expect(svg.match(/<polyline /g)).toHaveLength(2)
    expect(svg).toContain('recommended')
  })

  it('prints the table, the bar chart and the recommendation; progress goes to stderr', () => {
    const r = conveyor(
      '--handler',
      ECHO,
      '--generator',
      fixture('tune-generator.mjs'),
      '--threads',
      '1',
      '--lane-bytes',
      '64k',
      ...QUICK,
    )
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/threads\s+lane\s+msg\/s\s+of best/)
    expect(r.stdout).toMatch(/1 × 64 KiB │█+/)
    expect(r.stdout).toMatch(
      /Recommended: threads: 1, laneBytes: 65536\n1 thread: the best measured/,
    )
    expect(r.stderr).toContain('[3/3] repeat 3: 1 thread, 64 KiB lanes')
  })

  it('survives a handler that throws now and then: exit 0, the failures counted', () => {
    const r = conveyor(
      '--handler',
      FLAKY,
      '--messages',
      ORDERS,
      '--threads',
      '1',
      '--lane-bytes',
      '64k',
      ...QUICK,
      '--json',
    )
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    const [c] = result.configurations
    // Orders 7 and 57 of every 100 throw; one attempt each, so each failure is a dead letter.
    expect(c.failed).toBeGreaterThan(0)
    expect(c.deadLettered).toBe(c.failed)
    expect(c.failed).toBeLessThan(c.finished)
    expect(result.firstFailure).toMatch(/^Error: order \d+ refused$/)
    expect(result.recommendation.threads).toBe(1)
  })

  it('--json: what the handler prints goes to stderr, stdout holds only the document', () => {
    const r = conveyor(
      '--handler',
      fixture('chatty.mjs'),
      '--messages',
      ORDERS,
      '--threads',
      '1',
      '--lane-bytes',
      '64k',
      ...QUICK,
      '--json',
    )
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout).recommendation.threads).toBe(1)
    expect(r.stderr).toContain('chatty handler: setting up')
  })

  it('a handler that never returns: ends anyway, exit 1, no recommendation', () => {
    const r = conveyor(
      '--handler',
      fixture('tune-never-returns.mjs'),
      '--messages',
      ORDERS,
      '--threads',
      '1',
      '--lane-bytes',
      '64k',
      ...QUICK,
      '--json',
    )
    expect(r.code, r.stderr).toBe(1)
    const result = JSON.parse(r.stdout)
    expect(result.recommendation).toBeNull()
    expect(result.configurations[0]).toMatchObject({ throughput: 0, finished: 0, samples: 0 })
  })

  it('leaves out a lane size too small for the largest message, and says why', () => {
    const big = join(tmp, 'big.ndjson')
    writeFileSync(big, `${JSON.stringify({ id: 1, pad: 'x'.repeat(3000) })}\n`)
    const r = conveyor(
      '--handler',
      ECHO,
      '--messages',
      big,
      '--threads',
      '1',
      '--lane-bytes',
      '4k,64k',
      ...QUICK,
      '--json',
    )
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout)
    expect(result.settings.laneBytes).toEqual([65536])
    expect(result.skipped).toEqual([
      { laneBytes: 4096, reason: expect.stringMatching(/over half a 4 KiB lane/) },
    ])
  })

  it.each([
    [['--messages', ORDERS], /needs --handler/],
    [['--handler', ECHO], /either --messages <file.ndjson> or --generator <module>/],
    [['--handler', ECHO, '--messages', ORDERS, '--generator', ECHO], /one of them/],
    [
      ['--handler', './no/such.mjs', '--messages', ORDERS],
      /--handler: no such file: .*no\/such\.mjs/,
    ],
    [['--handler', ECHO, '--messages', 'nope.ndjson'], /--messages: no such file/],
    [['--handler', ECHO, '--messages', ORDERS, '--threads', '0'], /--threads .*'0'/],
    [['--handler', ECHO, '--messages', ORDERS, '--lane-bytes', '1000'], /--lane-bytes/],
    [['--handler', ECHO, '--messages', ORDERS, '--repeats', '2'], /--repeats must be a number ≥ 3/],
    [['--handler', ECHO, '--messages', ORDERS, '--duration', 'soon'], /--duration/],
    [['--handler', ECHO, '--messages', ORDERS, '--speed', '3'], /--speed/],
  ])('usage error %#: exit 2 with a message', (args, message) => {
    const r = conveyor(...args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).toContain('conveyor --help')
    expect(r.stdout).toBe('')
  })

  it('a bad NDJSON line: exit 2 naming the line', () => {
    const bad = join(tmp, 'bad.ndjson')
    writeFileSync(bad, '{"id":1}\n\n{"id":2,}\n')
    const r = conveyor('--handler', ECHO, '--messages', bad)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/line 3 is not JSON/)
  })

  it('a module that is not a handler: exit 2', () => {
    const r = conveyor(
      '--handler',
      fixture('not-a-handler.mjs'),
      '--messages',
      ORDERS,
      '--threads',
      '1',
      '--lane-bytes',
      '64k',
      ...QUICK,
    )
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/HANDLER|handler module/)
  })

  it('is in --help', () => {
    const r = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' })
    for (const flag of [
      'conveyor tune',
      '--messages',
      '--generator',
      '--lane-bytes',
      '--repeats',
      '--warmup',
      '--chart',
    ]) {
      expect(r.stdout).toContain(flag)
    }
  })
})
