import { workerData } from 'node:worker_threads'
import { defineHandler } from 'conveyor-lanes/worker'
import { work } from '../support/work.js'

/**
 * conveyor handler for the thread-controller scenarios (bench/autoscale.ts): the calibrated
 * synthetic work, with a round count the main thread may change while the queue runs (an
 * Int32 in workerData.rounds, a SharedArrayBuffer): a handler that turns 10× heavier mid-run.
 */
const rounds = new Int32Array((workerData as { rounds: SharedArrayBuffer }).rounds)

export default defineHandler({
  handle(message: string): number {
    return work(message, Atomics.load(rounds, 0))
  },
})
