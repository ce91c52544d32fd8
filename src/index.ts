export type { BuiltinCodecName, Codec, CodecSpec, CustomCodec } from './codec/index.js'
export { ConveyorError, type ConveyorErrorCode, isConveyorError } from './errors.js'
export * from './queue/index.js'
