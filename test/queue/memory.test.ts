import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

const MiB = 1024 * 1024

describe('memory', () => {
  it('RSS stays flat while an over-fast producer pushes for 20 s', async () => {
    const queue = makeQueue({
      handler: fixture('work.mjs'),
      threads: 2,
      workerData: { spinUs: 20 },
    })
    await queue.start()
    let acks = 0
    let pushed = 0
    const samples: { at: number; rss: number; fill: number }[] = []
    const started = performance.now()
    const WARM_UP_MS = 3000
    const RUN_MS = 20_000
    let baseline = 0
    let nextSample = started + WARM_UP_MS
    const pad = 'p'.repeat(40)
    const ack = () => {
      acks++
    }
    for (;;) {
      await queue.push({ id: pushed, pad }, { ack })
      pushed++
      if ((pushed & 255) === 0) {
        const now = performance.now()
        if (now >= nextSample) {
          const rss = process.memoryUsage().rss
          if (baseline === 0) baseline = rss
          const stats = queue.stats()
          const capacity = stats.lanes.reduce((n, l) => n + l.capacityBytes, 0)
          samples.push({ at: Math.round(now - started), rss, fill: stats.backlogBytes / capacity })
          nextSample = now + 500
        }
        if (now - started >= RUN_MS) break
      }
    }
    const end = process.memoryUsage().rss
    const report = await queue.stop()

    const peak = Math.max(...samples.map((s) => s.rss))
    const trace = samples
      .map((s) => `${s.at}ms ${(s.rss / MiB).toFixed(1)}MiB fill ${s.fill.toFixed(2)}`)
      .join(', ')
    expect(samples.length).toBeGreaterThan(20)
    // The producer outruns the two workers: the lanes stay (nearly) full.
    const full = samples.filter((s) => s.fill > 0.5).length
    expect(full, trace).toBeGreaterThan(samples.length * 0.8)
    expect(end - baseline, trace).toBeLessThan(64 * MiB)
    expect(peak - baseline, trace).toBeLessThan(64 * MiB)
    // Accounting at the end.
    expect(report).toMatchObject({ pushed, completed: pushed, deadLettered: 0, unprocessed: [] })
    expect(report.drained).toBe(true)
    expect(acks).toBe(pushed)
  })
})
