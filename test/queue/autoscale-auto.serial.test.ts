import { describe, expect, it } from 'vitest'
import { cpuCeiling, type Queue } from '../../dist/src/index.js'
import { fixture, makeQueue, stopQueuesAfterEach } from './helpers.js'

stopQueuesAfterEach()

const cpus = cpuCeiling().cpus

/**
 * threads: 'auto' on this machine, with a real queue: the controller's decisions, counted (the
 * throughput side of issue 9's acceptance is measured by `npm run bench:autoscale`).
 */
describe.runIf(cpus > 1)("threads: 'auto' (the thread controller on the usable CPUs)", () => {
  async function flatOut(queue: Queue<string>, bytes: number, until: () => boolean) {
    const batch = Array.from({ length: 64 }, (_, i) => `${i}:`.padEnd(bytes, 'x'))
    let pushed = 0
    while (!until()) {
      await queue.pushMany(batch)
      pushed += batch.length
    }
    return pushed
  }

  it('keeps a lane per CPU while every lane is busy, and gets back to it after a 10× step', async () => {
    const spinUs = new Int32Array(new SharedArrayBuffer(4))
    const queue = makeQueue({
      handler: fixture('step-spin.mjs'),
      threads: 'auto',
      codec: 'string',
      workerData: { spinUs: spinUs.buffer },
    }) as Queue<string>
    const counts: number[] = []
    queue.on('threads', (count) => counts.push(count))
    await queue.start()
    expect(queue.stats().threads).toBe(cpus)

    // CPU-heavy (40 µs a message): every lane busy, the main thread mostly waiting for room.
    Atomics.store(spinUs, 0, 40)
    let phase = 'heavy'
    let deadline = Date.now() + 3000
    let pushed = await flatOut(queue, 64, () => Date.now() > deadline)
    expect(counts, `phase ${phase}: ${JSON.stringify(queue.stats().autoscale?.decisions)}`).toEqual(
      [cpus],
    )

    // Light: the lanes now wait for the producer; whatever the controller makes of it, a 10×
    // heavier handler afterwards must bring back a lane per CPU.
    Atomics.store(spinUs, 0, 2)
    phase = 'light'
    deadline = Date.now() + 4000
    pushed += await flatOut(queue, 4096, () => Date.now() > deadline)
    Atomics.store(spinUs, 0, 40)
    phase = 'stepped'
    deadline = Date.now() + 8000
    pushed += await flatOut(queue, 64, () => Date.now() > deadline)
    const decisions = queue.stats().autoscale?.decisions.map((d) => d.reason)
    expect(queue.stats().threads, `phase ${phase}: ${JSON.stringify(decisions)}`).toBe(cpus)

    await queue.onIdle()
    const stats = queue.stats()
    expect(stats.completed).toBe(pushed)
    expect(stats.pushed).toBe(pushed)
  })
})
