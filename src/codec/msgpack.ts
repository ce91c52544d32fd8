import { Packr } from 'msgpackr'
import type { Codec } from './types.js'

/** MessagePack via msgpackr; loaded by builtinCodec('msgpack') only. */
export function msgpackCodec(): Codec<unknown> {
  const packr = new Packr({ useRecords: false })
  return {
    name: 'msgpack',
    toWire: (value) => packr.pack(value),
    fromWire: (ring, offset, length) => packr.unpack(ring.subarray(offset, offset + length)),
  }
}
