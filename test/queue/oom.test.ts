import { describe, expect, it } from 'vitest'
import { isConveyorError } from '../../dist/src/index.js'
import { fixture, makeQueue, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

describe('worker out of memory (resourceLimits)', () => {
  it('restarts the lane and dead-letters the message after `attempts` deaths; others complete', async () => {
    const ATTEMPTS = 3
    const queue = makeQueue({
      handler: fixture('oom.mjs'),
      threads: 2,
      resourceLimits: { maxOldGenerationSizeMb: 16 },
      retry: { attempts: ATTEMPTS, backoffMs: 1 },
    })
    const exits: { lane: number; error: Error & { code?: string } }[] = []
    const deadLetters: { message: unknown; error: Error & { code?: string } }[] = []
    queue.on('worker-exit', (info) => exits.push(info))
    queue.on('dead-letter', (letter) => deadLetters.push(letter))
    await queue.start()

    const N = 400
    const OOM_ID = 150
    const acks = new Int32Array(N)
    const nacks = new Int32Array(N)
    let settled = 0
    for (let id = 0; id < N; id++) {
      await queue.push(id === OOM_ID ? { id, oom: true } : { id }, {
        ack: () => {
          acks[id]++
          settled++
        },
        nack: () => {
          nacks[id]++
          settled++
        },
      })
    }
    await waitFor(() => settled === N, 'every message to settle', 90_000)

    expect(exits).toHaveLength(ATTEMPTS)
    for (const { error } of exits) expect(error.code).toBe('ERR_WORKER_OUT_OF_MEMORY')
    expect(new Set(exits.map((e) => e.lane)).size).toBe(1) // always the same lane
    expect(deadLetters).toHaveLength(1)
    expect(deadLetters[0].message).toEqual({ id: OOM_ID, oom: true })
    expect(isConveyorError(deadLetters[0].error, 'WORKER_DIED')).toBe(true)
    expect(deadLetters[0].error.message).toContain(`died ${ATTEMPTS} times`)
    for (let id = 0; id < N; id++) {
      expect([acks[id], nacks[id]], `message ${id}`).toEqual(id === OOM_ID ? [0, 1] : [1, 0])
    }
    const stats = queue.stats()
    expect(stats).toMatchObject({ pushed: N, completed: N - 1, deadLettered: 1, inFlight: 0 })
    expect(stats.lanes.reduce((n, l) => n + l.restarts, 0)).toBe(ATTEMPTS)
    // The restarted lane still works.
    let more = 0
    for (let id = 0; id < 100; id++) await queue.push({ id }, { ack: () => more++ })
    await waitFor(() => more === 100, 'messages after the restarts')
    expect(await queue.stop()).toMatchObject({ pushed: N + 100, unprocessed: [], drained: true })
  })
})
