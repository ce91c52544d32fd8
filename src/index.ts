export type { BuiltinCodecName, CodecSpec, CustomCodec } from './codec/index.js'
export { AbortError, ConveyorError, type ConveyorErrorCode, isConveyorError } from './errors.js'
export * from './queue/index.js'
export {
  type ProduceOptions,
  type Producer,
  type ProducerFactory,
  runProducers,
} from './sources/producer.js'
export { type CpuCeiling, type CpuCeilingSource, cpuCeiling } from './tune/cpu-ceiling.js'
export type { HandlerContext, HandlerDefinition, HandlerFunction } from './worker.js'
