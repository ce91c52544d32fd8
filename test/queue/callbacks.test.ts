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
})
