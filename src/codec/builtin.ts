import { deserialize, serialize } from 'node:v8'
import type { BuiltinCodecName, Codec } from './types.js'
import { readUtf8 } from './utf8.js'

export const jsonCodec: Codec<unknown> = {
  name: 'json',
  toWire(value) {
    const text = JSON.stringify(value)
    // JSON.stringify(undefined) and of functions yields undefined: no message to send.
    if (text === undefined)
      throw new TypeError(`JSON cannot encode a value of type ${typeof value}`)
    return text
  },
  fromWire: (ring, offset, length) => JSON.parse(readUtf8(ring, offset, offset + length)),
}

export const stringCodec: Codec<string> = {
  name: 'string',
  passThrough: true,
  toWire(value) {
    if (typeof value !== 'string')
      throw new TypeError(`codec 'string' takes strings, got ${typeof value}`)
    return value
  },
  fromWire: (ring, offset, length) => readUtf8(ring, offset, offset + length),
}

export const bytesCodec: Codec<Uint8Array> = {
  name: 'bytes',
  passThrough: true,
  toWire(value) {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`codec 'bytes' takes a Uint8Array or Buffer, got ${typeof value}`)
    }
    return value
  },
  // A view into the ring: copy it if it must outlive the handler call.
  fromWire: (ring, offset, length) => ring.subarray(offset, offset + length),
}

export const v8Codec: Codec<unknown> = {
  name: 'v8',
  toWire: (value) => serialize(value),
  fromWire: (ring, offset, length) => deserialize(ring.subarray(offset, offset + length)),
}

/**
 * A built-in codec. msgpack is imported only when chosen: msgpackr (and its optional native
 * addon) is the heaviest thing the package could load, and most queues never use it.
 */
export async function builtinCodec(name: BuiltinCodecName): Promise<Codec> {
  switch (name) {
    case 'json':
      return jsonCodec
    case 'string':
      return stringCodec as Codec
    case 'bytes':
      return bytesCodec as Codec
    case 'v8':
      return v8Codec
    case 'msgpack':
      return (await import('./msgpack.js')).msgpackCodec()
  }
}

export const BUILTIN_CODECS: readonly BuiltinCodecName[] = [
  'json',
  'string',
  'bytes',
  'v8',
  'msgpack',
]
