import { roundsFromEnv, work } from '../support/work.js'

/**
 * Piscina / Tinypool task for the CPU suites: the same synthetic work as conveyor's
 * work-handler, on one message or on a batch of them (the message arrives already decoded by
 * postMessage's structured clone). Returns how many messages it handled.
 */
const rounds = roundsFromEnv()
/** Results are folded in here so no engine can drop the work. */
export const observed = { sink: 0 }

export default function handle(task: string | string[]): number {
  if (typeof task === 'string') {
    observed.sink ^= work(task, rounds)
    return 1
  }
  for (let i = 0; i < task.length; i++) observed.sink ^= work(task[i], rounds)
  return task.length
}
