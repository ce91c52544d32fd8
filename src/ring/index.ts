export {
  CONTROL_BYTES,
  capacityOf,
  createRingBuffer,
  HEADER_BYTES,
  MAX_CAPACITY,
  MIN_CAPACITY,
  maxPayloadBytes,
  RingState,
  recordBytes,
  SLOT,
} from './layout.js'
export { RingReader } from './reader.js'
export {
  adoptRelease,
  doneCursor,
  type RecordView,
  recordAt,
  recordsFrom,
  setTag,
} from './recovery.js'
export { RingWriter } from './writer.js'
