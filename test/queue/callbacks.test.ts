import { describe, expect, it } from 'vitest'
import { fixture, makeQueue, stopQueuesAfterEach, waitFor } from './helpers.js'

stopQueuesAfterEach()

/**
 * One slow lane of 4 KiB and 400 pushes issued at once: most wait for room, and only the
 * lane's watcher moves them in as the worker releases space. `throwAt`: the id whose ack throws.
 */
async function pushThroughOneLane(throwAt: number | undefined) {
  const queue = makeQueue({
    handler: fixture('work.mjs'),
    threads: 1,
    laneBytes: 4096,
    workerData: { spinUs: 200 },
  })
  const errors: Error[] = []
  queue.on('error', (e) => errors.push(e))
  await queue.start()
  const N = 400
  const seen = { acks: 0, accepted: 0, refused: 0 }
  for (let id = 0; id < N; id++) {
    queue
      .push(
        { id },
        {
          ack: () => {
            seen.acks++
            if (id === throwAt) throw new Error('ack callback failed')
          },
        },
      )
      .then(
        () => seen.accepted++,
        () => seen.refused++,
      )
  }
  try {
    await waitFor(() => seen.acks === N, `all ${N} acks`, 4000)
  } catch (err) {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(seen)}, errors: ${errors}`)
  }
  expect(seen).toEqual({ acks: N, accepted: N, refused: 0 })
  expect(queue.stats().completed).toBe(N)
  return errors
}

describe('user callbacks', () => {
  it('(control) 400 pushes through one small slow lane all settle', async () => {
    expect(await pushThroughOneLane(undefined)).toEqual([])
  })

  // An ack that throws must neither unwind the lane's watcher mid-drain (losing that batch's
  // settled count) nor stop it flushing the pushes waiting for room: the error goes to the
  // 'error' event and the lane goes on.
  it('an ack that throws does not stall the lane or the pushes waiting for room', async () => {
    const errors = await pushThroughOneLane(10)
    expect(errors.map((e) => e.message)).toEqual(['ack callback failed'])
  })

  it("'failed' and 'dead-letter' listeners that throw do not lose settlements", async () => {
    const queue = makeQueue({
      handler: fixture('run.mjs'),
      threads: 1,
      retry: { attempts: 2, backoffMs: 1 },
    })
    const errors: Error[] = []
    queue.on('error', (e) => errors.push(e))
    queue.on('failed', () => {
      throw new Error('failed listener threw')
    })
    queue.on('dead-letter', () => {
      throw new Error('dead-letter listener threw')
    })
    await queue.start()
    let acks = 0
    let nacks = 0
    const options = { ack: () => acks++, nack: () => nacks++ }
    for (let i = 0; i < 50; i++) {
      await queue.push(
        i % 10 === 0 ? { op: 'throw', text: `no ${i}` } : { op: 'echo', value: i },
        options,
      )
    }
    await waitFor(() => acks + nacks === 50, 'every message to settle')
    expect({ acks, nacks }).toEqual({ acks: 45, nacks: 5 })
    // Two failed attempts and one dead letter for each of the 5 failing messages.
    expect(errors.filter((e) => e.message === 'failed listener threw')).toHaveLength(10)
    expect(errors.filter((e) => e.message === 'dead-letter listener threw')).toHaveLength(5)
    expect(await queue.stop()).toMatchObject({ completed: 45, deadLettered: 5 })
  })
})
