import { pathToFileURL } from 'node:url'
import { ConveyorError } from '../errors.js'
import { importUserModule } from '../user-module.js'
import { BUILTIN_CODECS, builtinCodec } from './builtin.js'
import type { BuiltinCodecName, Codec, CodecSpec, CustomCodec } from './types.js'

export { BUILTIN_CODECS, builtinCodec } from './builtin.js'
export type { BuiltinCodecName, Codec, CodecSpec, CustomCodec } from './types.js'
export { readUtf8, writeUtf8 } from './utf8.js'

/** A codec spec in the form that can be sent to a worker (strings only). */
export type WireCodecSpec = string | { module: string }

export function toWireSpec(spec: CodecSpec): WireCodecSpec {
  if (typeof spec === 'string') {
    if (!(BUILTIN_CODECS as readonly string[]).includes(spec)) {
      throw new ConveyorError(
        'INVALID_OPTION',
        `unknown codec '${spec}': use one of ${BUILTIN_CODECS.join(', ')} or { module: <path or URL of a module exporting { encode, decode }> }`,
      )
    }
    return spec
  }
  if (spec && (typeof spec.module === 'string' || spec.module instanceof URL)) {
    return { module: moduleHref(spec.module) }
  }
  throw new ConveyorError('INVALID_OPTION', 'codec must be a codec name or { module: path | URL }')
}

export function moduleHref(module: string | URL): string {
  if (module instanceof URL) return module.href
  return /^[a-z][a-z0-9+.-]*:/i.test(module) ? module : pathToFileURL(module).href
}

/** Builds the codec named by a spec; custom codec modules are imported. */
export async function loadCodec(spec: WireCodecSpec): Promise<Codec> {
  if (typeof spec === 'string') return builtinCodec(spec as BuiltinCodecName)
  let mod: { default?: Partial<CustomCodec> }
  try {
    mod = (await importUserModule(spec.module)) as { default?: Partial<CustomCodec> }
  } catch (err) {
    throw new ConveyorError(
      'INVALID_OPTION',
      `codec module ${spec.module} could not be imported: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  const custom = mod.default
  if (!custom || typeof custom.encode !== 'function' || typeof custom.decode !== 'function') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `codec module ${spec.module} must export default { encode(value), decode(bytes) }`,
    )
  }
  const { encode, decode } = custom as CustomCodec
  return {
    name: spec.module,
    toWire(value) {
      const wire: unknown = encode(value)
      // Anything else would be copied into the ring as garbage, or as nothing at all.
      if (typeof wire === 'string' || wire instanceof Uint8Array) return wire
      throw new TypeError(
        `encode() must return a string or a Uint8Array (a Buffer), got ${describeWire(wire)}: wrap bytes as new Uint8Array(arrayBuffer)`,
      )
    },
    fromWire: (ring, offset, length) => decode(ring.subarray(offset, offset + length)),
  }
}

function describeWire(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return typeof value
  return (value as object).constructor?.name ?? 'an object'
}
