import { ConveyorError, describeValue } from '../errors.js'
import { type BatchCallbacks, type Pending, type PushPending, UNTRACKED } from './pending.js'

export type Key = string | number

/**
 * What push(), pushMany() and run() take besides the message, validated: a call from plain
 * JavaScript may pass anything, and a bad callback found later would fail far from its cause.
 */
export type PushCall =
  | {
      key: Key | undefined
      /** What to settle for the message; the ack function itself when that is all. */
      pending: Pending | undefined
      signal: undefined
    }
  | { key: Key | undefined; pending: PushPending; signal: AbortSignal }

export function pushCall(options: unknown): PushCall {
  if (options === undefined) return { key: undefined, pending: undefined, signal: undefined }
  const { ack, nack, key, signal } = optionsObject(
    options,
    'push',
    '{ key?, ack?, nack?, signal? }',
  )
  checkKey(key, 'push()')
  checkCallback(ack, 'push(): ack')
  checkCallback(nack, 'push(): nack')
  checkSignal(signal, 'push()')
  if (nack === undefined && signal === undefined) {
    return { key, pending: ack as (() => void) | undefined, signal: undefined }
  }
  const pending: PushPending = {
    kind: 'push',
    ack: ack as (() => void) | undefined,
    nack: nack as (error: Error, message: unknown) => void,
    ...UNTRACKED,
    tracked: signal !== undefined,
  }
  if (signal === undefined) return { key, pending, signal }
  return { key, pending, signal: signal as AbortSignal }
}

export interface RunCall {
  key: Key | undefined
  signal: AbortSignal | undefined
}

export function runCall(options: unknown): RunCall {
  if (options === undefined) return { key: undefined, signal: undefined }
  const { key, signal } = optionsObject(options, 'run', '{ key?, signal? }')
  checkKey(key, 'run()')
  checkSignal(signal, 'run()')
  return { key, signal: signal as AbortSignal | undefined }
}

export interface BatchCall {
  keys: Key | ((message: unknown, index: number) => Key | undefined) | undefined
  callbacks: BatchCallbacks | undefined
  signal: AbortSignal | undefined
}

export function batchCall(messages: unknown, options: unknown): BatchCall {
  if (!Array.isArray(messages)) {
    throw new ConveyorError(
      'INVALID_OPTION',
      `pushMany(messages): messages must be an array, got ${describeValue(messages)}`,
    )
  }
  if (options === undefined) return { keys: undefined, callbacks: undefined, signal: undefined }
  const { ack, nack, key, signal } = optionsObject(
    options,
    'pushMany',
    '{ key?, ack?, nack?, signal? }',
  )
  if (typeof key !== 'function') checkKey(key, 'pushMany()')
  checkCallback(ack, 'pushMany(): ack')
  checkCallback(nack, 'pushMany(): nack')
  checkSignal(signal, 'pushMany()')
  return {
    keys: key as BatchCall['keys'],
    callbacks:
      ack === undefined && nack === undefined
        ? undefined
        : {
            kind: 'many',
            ack: ack as BatchCallbacks['ack'],
            nack: nack as BatchCallbacks['nack'],
            tracked: false,
            detach: undefined,
          },
    signal: signal as AbortSignal | undefined,
  }
}

function optionsObject(
  options: unknown,
  call: string,
  shape: string,
): { ack?: unknown; nack?: unknown; key?: unknown; signal?: unknown } {
  if (options === null || typeof options !== 'object') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `${call}(message, options): options must be an object ${shape}, got ${describeValue(options)}`,
    )
  }
  return options
}

/** `where`: how the error names the key ("push()", "pushMany(): the key of message 3"). */
export function checkKey(key: unknown, where: string): asserts key is Key | undefined {
  if (key === undefined || typeof key === 'string') return
  if (typeof key === 'number' && Number.isFinite(key)) return
  throw new ConveyorError(
    'INVALID_OPTION',
    `${where}: key must be a string or a finite number, got ${describeValue(key)}`,
  )
}

function checkCallback(fn: unknown, what: string): void {
  if (fn !== undefined && typeof fn !== 'function') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `${what} must be a function, got ${describeValue(fn)}`,
    )
  }
}

function checkSignal(signal: unknown, call: string): void {
  if (signal === undefined || signal instanceof AbortSignal) return
  throw new ConveyorError(
    'INVALID_OPTION',
    `${call}: signal must be an AbortSignal (new AbortController().signal), got ${describeValue(signal)}`,
  )
}
