import { defineConfig } from 'vitest/config'

/**
 * Heavy files (stress, memory, SIGKILL, out of memory, pack and install) run alone, after the rest, in their own
 * project: on a 2-core machine they would starve the others' workers, and be starved.
 * `npm test` runs `--project parallel`, then `--project serial`.
 */
const serial = [
  'test/ring/ring.stress.test.ts',
  'test/queue/memory.test.ts',
  'test/queue/sigkill.test.ts',
  'test/queue/oom.test.ts',
  // workers spinning for seconds, and stop() timed against a budget: alone, not beside others
  'test/queue/drain-budget.test.ts',
  // the thread controller on this machine's CPUs: it must have them to itself
  'test/queue/autoscale-auto.serial.test.ts',
  // packs the project (prepack rebuilds dist/) and installs it: never beside other tests
  'test/package/pack.test.ts',
  // broker fault tests: consumer processes SIGKILLed, private brokers restarted
  'test/sources/**/*.serial.test.ts',
]

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'parallel', include: ['test/**/*.test.ts'], exclude: serial },
      },
      {
        extends: true,
        test: {
          name: 'serial',
          include: serial,
          fileParallelism: false,
          poolOptions: { forks: { singleFork: true } },
        },
      },
    ],
  },
})
