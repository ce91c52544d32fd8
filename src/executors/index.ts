/**
 * `conveyor-lanes/executors`: go-zero's batched writers. Items go in one at a time; the user's
 * execute(batch) writes them in batches, one execution at a time, in order.
 */

export { ConveyorError, isConveyorError } from '../errors.js'
export { BulkExecutor, type BulkOptions } from './bulk.js'
export { ChunkExecutor, type ChunkOptions } from './chunk.js'
export {
  type BatchContainer,
  type ExecuteBatch,
  ExecuteError,
  type ExecuteErrorHandler,
  PeriodicalExecutor,
  type PeriodicalOptions,
} from './periodical.js'
