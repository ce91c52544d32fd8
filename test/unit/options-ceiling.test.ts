import { fileURLToPath } from 'node:url'
import { describe, expect, it, vi } from 'vitest'
import { ConveyorError } from '../../src/errors.js'
import { resolveOptions, resolveThreads, threadCeiling } from '../../src/queue/options.js'
import type { CpuCeiling } from '../../src/tune/cpu-ceiling.js'

/**
 * The options under a container's CPU quota: a pod limited to 2 CPUs (cgroup v2 cpu.max
 * 200000/100000) on a 64-core host, where os.availableParallelism() says 64 on Node 20.
 * The ceiling module is replaced (its own tests read fixture cgroup trees), and so is
 * os.availableParallelism(), as Node 20 would answer there: a use of it shows as 64.
 */
vi.mock('node:os', async (importOriginal) => {
  const os = await importOriginal<typeof import('node:os')>()
  return {
    ...os,
    default: { ...os, availableParallelism: () => 64 },
    availableParallelism: () => 64,
  }
})
vi.mock('../../src/tune/cpu-ceiling.js', () => ({
  cpuCeiling: (): CpuCeiling => ({
    cpus: 2,
    source: 'cgroup-v2',
    affinity: 64,
    quota: 2,
    quotaFile: '/sys/fs/cgroup/cpu.max',
    detail: 'cgroup v2 cpu.max 200000/100000',
    notes: [],
  }),
}))

const handler = fileURLToPath(new URL('../fixtures/echo.mjs', import.meta.url))

describe('threads in a pod limited to 2 CPUs on a 64-core host', () => {
  it("'auto' (and the default) start 2 threads, not 64", () => {
    expect(resolveThreads('auto')).toBe(2)
    expect(resolveThreads(undefined)).toBe(2)
    expect(resolveOptions({ handler })).toMatchObject({ threads: 2, maxThreads: 2 })
  })

  it('the ceiling is 4 per CPU of the quota: 8', () => {
    expect(threadCeiling()).toBe(8)
    expect(resolveThreads(8)).toBe(8)
  })

  it('a range starts at the quota’s CPUs, clamped to the range', () => {
    expect(resolveThreads({ min: 1, max: 8 })).toBe(2)
    expect(resolveThreads({ min: 3, max: 8 })).toBe(3)
    expect(resolveThreads({ min: 1, max: 1 })).toBe(1)
    expect(resolveOptions({ handler, threads: { min: 1, max: 8 } }).maxThreads).toBe(8)
  })

  it('9 threads are refused, saying where the 2 came from', () => {
    let thrown: unknown
    try {
      resolveThreads(9)
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(ConveyorError)
    expect((thrown as ConveyorError).code).toBe('INVALID_OPTION')
    expect((thrown as ConveyorError).message).toBe(
      'threads is 9, above the ceiling of 8 threads: 4 per CPU, and this process may use 2 CPUs (cgroup v2 cpu.max 200000/100000). Handlers are CPU-bound, so more threads than CPUs only contend.',
    )
    expect(() => resolveThreads({ min: 1, max: 64 })).toThrow(/threads\.max is 64.*may use 2 CPUs/)
  })
})
