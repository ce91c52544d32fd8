/**
 * The file Piscina loads in each worker. Piscina require()s its task file first and import()s
 * it only if that fails. Given the ES module lane task directly, that require() is
 * require(esm) on Node ≥ 20.19, which under load has aborted the whole process (a V8 fatal
 * error, "IsGraphAsync must be used on an instantiated module"); under a loader with a
 * require hook (tsx) it instead recompiles our whole worker graph to CommonJS. A CommonJS
 * entry makes that require() plain, and the lane task is then import()ed as the ES module it
 * is, so workers need no flag of ours and keep the flags they inherit from the app.
 */
import type { LaneExit } from '../src/lane/protocol.js'

type LaneTask = typeof import('./lane-task.js')

export default async function laneEntry(
  task: Parameters<LaneTask['default']>[0],
): Promise<LaneExit> {
  const { default: laneTask }: LaneTask = await import('./lane-task.js')
  return laneTask(task)
}
