import { defineHandler } from 'conveyor-lanes/worker'
import { roundsFromEnv, work } from '../support/work.js'

/**
 * conveyor handler for the CPU suites: the calibrated synthetic work (bench/support/work.ts)
 * on each message, with the round count the queue was started with (env).
 */
const rounds = roundsFromEnv()

export default defineHandler({
  handle(message: string): number {
    return work(message, rounds)
  },
})
