/**
 * A codec turns a message into what a ring stores and back. `toWire` returns a string (the
 * lane writes it as UTF-8 straight into the ring, no intermediate buffer) or bytes (copied
 * in once). `fromWire` reads from a Buffer over the whole shared ring: a view, valid only
 * until the handler has finished with the message.
 */
export interface Codec<T = unknown> {
  readonly name: string
  /**
   * `toWire` only checks its argument's type and returns it as it is (the string and bytes
   * codecs): a pushMany() then writes the caller's messages without building an array of
   * their wire forms, and copies the batch only if it has to wait.
   */
  readonly passThrough?: boolean
  toWire(value: T): string | Uint8Array
  fromWire(ring: Buffer, offset: number, length: number): T
}

/** A user codec, loaded from a module in the main thread and in every worker. */
export interface CustomCodec<T = unknown> {
  encode(value: T): string | Uint8Array
  decode(bytes: Uint8Array): T
}

export type BuiltinCodecName = 'json' | 'string' | 'bytes' | 'v8' | 'msgpack'

/**
 * How a queue names its codec. Functions cannot cross to worker threads, so a custom codec is
 * a module (path or URL) whose default export is a CustomCodec.
 */
export type CodecSpec = BuiltinCodecName | { module: string | URL }
