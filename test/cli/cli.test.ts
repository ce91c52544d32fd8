import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const CLI = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url))
const ECHO = fileURLToPath(new URL('../fixtures/echo.mjs', import.meta.url))

function conveyor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('conveyor command line', () => {
  it('prints help with every flag and exits 0', () => {
    const r = conveyor('--help')
    expect(r.code).toBe(0)
    for (const flag of [
      '--duration',
      '--threads',
      '--handler',
      '--rate',
      '--json',
      '--quick',
      '--filter',
    ]) {
      expect(r.stdout).toContain(flag)
    }
  })

  it('does not offer the repository-only benchmarks: bench says where they are', () => {
    expect(conveyor('--help').stdout).not.toMatch(/conveyor bench/)
    const r = conveyor('bench', '--quick')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/npm run bench/)
  })

  it('prints the package version', () => {
    const r = conveyor('--version')
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it('rejects an unknown flag with exit code 2 and names it', () => {
    const r = conveyor('demo', '--speed', '3')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--speed/)
    expect(r.stderr).toMatch(/conveyor --help/)
  })

  it.each([
    ['--duration', 'soon'],
    ['--duration', '-1'],
    ['--threads', 'many'],
    ['--threads', '0'],
    ['--threads', '1.5'],
    ['--rate', 'fast'],
  ])('rejects %s %s with exit code 2', (flag, value) => {
    const r = conveyor(`${flag}=${value}`)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(flag)
    expect(r.stderr).toContain(value)
  })

  it('rejects a missing handler file with exit code 2 and the path', () => {
    const r = conveyor('--handler', './no/such/handler.mjs')
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no such file: .*no\/such\/handler\.mjs/)
  })

  it('rejects a handler module without a handler, exit code 2', () => {
    const r = conveyor(
      '--handler',
      fileURLToPath(import.meta.url).replace(/cli\.test\.ts$/, '../fixtures/not-a-handler.mjs'),
      '--duration',
      '0.5',
    )
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/HANDLER|handler module/)
  })

  it('runs a short demo with --json, ends by itself, and accounts for every message', () => {
    const r = conveyor('--duration', '1', '--threads', '2', '--handler', ECHO, '--json')
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout)
    expect(summary.conveyor.messages).toBeGreaterThan(0)
    expect(summary.conveyor.unprocessed).toBe(0)
    expect(summary.conveyor.deadLettered).toBe(0)
    expect(summary.piscina.messages).toBeGreaterThan(0)
    expect(summary.inline.messages).toBeGreaterThan(0)
    expect(summary.ratios.overPiscina).toBeGreaterThan(0)
  })

  // A user handler that throws now and then once crashed the Piscina comparison and lost the
  // conveyor run's result with it.
  it('survives a handler that throws now and then, in every run of the demo', () => {
    const FLAKY = fileURLToPath(new URL('../fixtures/flaky-orders.mjs', import.meta.url))
    const r = conveyor('--duration', '1', '--threads', '1', '--handler', FLAKY, '--json')
    expect(r.code, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout)
    expect(summary.conveyor.failed).toBeGreaterThan(0)
    expect(summary.piscina.messages).toBeGreaterThan(0)
    expect(summary.inline.messages).toBeGreaterThan(0)
  })

  it('prints the summary table on the default handler', () => {
    const r = conveyor('--duration', '1', '--threads', '1')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('Summary')
    expect(r.stdout).toContain('Piscina run() per message')
    expect(r.stdout).toContain('inline, one thread')
  })
})
