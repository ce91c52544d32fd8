import { describe, expect, it } from 'vitest'
import { ConveyorError } from '../../src/errors.js'
import { batchCall, pushCall, runCall } from '../../src/queue/call-options.js'

const pendingOfPush = (options: unknown) => pushCall(options).pending
const keyOf = (options: unknown, call: 'push' | 'run') =>
  call === 'push' ? pushCall(options).key : runCall(options).key

/** Asserts an INVALID_OPTION ConveyorError whose message contains every one of `words`. */
function expectInvalid(fn: () => unknown, ...words: string[]) {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(ConveyorError)
  expect((thrown as ConveyorError).code).toBe('INVALID_OPTION')
  for (const word of words) expect((thrown as Error).message).toContain(word)
}

const notObjects: [string, unknown][] = [
  ['null', null],
  ['a string', 'key'],
  ['a number', 1],
  ['a boolean', true],
  ['a function', () => {}],
]

const badKeys: [string, unknown][] = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['an object', {}],
  ['an array', []],
  ['true', true],
  ['null', null],
  ['a bigint', 1n],
  ['a symbol', Symbol('k')],
]

describe('push() options', () => {
  it('remembers nothing without options', () => {
    expect(pendingOfPush(undefined)).toBeUndefined()
    expect(pendingOfPush({})).toBeUndefined()
    expect(pendingOfPush({ key: 'k' })).toBeUndefined()
  })

  it('keeps an ack alone as the function itself (no object per message)', () => {
    const ack = () => {}
    expect(pendingOfPush({ ack })).toBe(ack)
    expect(pendingOfPush({ ack, key: 3 })).toBe(ack)
  })

  it('wraps a nack, with or without an ack', () => {
    const ack = () => {}
    const nack = () => {}
    expect(pendingOfPush({ ack, nack })).toMatchObject({ kind: 'push', ack, nack, tracked: false })
    const onlyNack = pendingOfPush({ nack }) as { kind: string; ack: unknown; nack: unknown }
    expect(onlyNack.kind).toBe('push')
    expect(onlyNack.ack).toBeUndefined()
    expect(onlyNack.nack).toBe(nack)
  })

  it.each(notObjects)('refuses %s as options', (_, options) => {
    expectInvalid(() => pendingOfPush(options), 'push(', 'options')
  })

  it.each<[string, unknown]>([
    ['a string', 'ack'],
    ['an object', {}],
    ['null', null],
    ['a number', 1],
  ])('refuses %s as ack or nack', (_, value) => {
    expectInvalid(() => pendingOfPush({ ack: value }), 'ack')
    expectInvalid(() => pendingOfPush({ nack: value }), 'nack')
    expectInvalid(() => pendingOfPush({ ack: () => {}, nack: value }), 'nack')
  })

  it.each(badKeys)('refuses %s as key', (_, key) => {
    expectInvalid(() => pendingOfPush({ key }), 'push(', 'key')
    expectInvalid(() => pendingOfPush({ key, ack: () => {} }), 'key')
  })

  it('accepts string and finite number keys', () => {
    for (const key of ['', 'k', 0, -1, 1.5, Number.MAX_VALUE]) {
      expect(() => pendingOfPush({ key })).not.toThrow()
    }
  })
})

describe('keys of push() and run()', () => {
  it('returns no key without options or key', () => {
    expect(keyOf(undefined, 'push')).toBeUndefined()
    expect(keyOf({}, 'run')).toBeUndefined()
    expect(keyOf({ ack: () => {} }, 'push')).toBeUndefined()
  })

  it('returns string and finite number keys as given', () => {
    for (const key of ['', 'order-1', 0, -7, 2.5]) {
      expect(keyOf({ key }, 'run')).toBe(key)
      expect(keyOf({ key }, 'push')).toBe(key)
    }
  })

  it.each(notObjects)('refuses %s as options, naming the call', (_, options) => {
    expectInvalid(() => keyOf(options, 'run'), 'run(', 'options')
    expectInvalid(() => keyOf(options, 'push'), 'push(', 'options')
  })

  it.each(badKeys)('refuses %s as key, naming the call', (_, key) => {
    expectInvalid(() => keyOf({ key }, 'run'), 'run(', 'key')
    expectInvalid(() => keyOf({ key }, 'push'), 'push(', 'key')
  })
})

describe('signals', () => {
  it('tracks a push with a signal, even without callbacks', () => {
    const signal = new AbortController().signal
    const call = pushCall({ signal })
    expect(call.signal).toBe(signal)
    expect(call.pending).toMatchObject({ kind: 'push', tracked: true, lane: undefined })
    expect(runCall({ signal }).signal).toBe(signal)
  })

  it.each<[string, unknown]>([
    ['an object', {}],
    ['a string', 'signal'],
    ['null', null],
    ['an AbortController', new AbortController()],
  ])('refuses %s as signal, naming the call', (_, signal) => {
    expectInvalid(() => pushCall({ signal }), 'push()', 'AbortSignal')
    expectInvalid(() => runCall({ signal }), 'run()', 'AbortSignal')
    expectInvalid(() => batchCall([], { signal }), 'pushMany()', 'AbortSignal')
  })
})

describe('pushMany() options', () => {
  it('takes a key, a key function, callbacks', () => {
    const key = (m: unknown) => String(m)
    const ack = () => {}
    expect(batchCall([], undefined)).toEqual({
      keys: undefined,
      callbacks: undefined,
      signal: undefined,
    })
    expect(batchCall([1], { key }).keys).toBe(key)
    expect(batchCall([1], { key: 'k' }).keys).toBe('k')
    expect(batchCall([1], { ack }).callbacks).toMatchObject({ kind: 'many', ack, nack: undefined })
  })

  it.each(notObjects)('refuses %s as messages', (_, messages) => {
    expectInvalid(() => batchCall(messages, undefined), 'pushMany(', 'array')
  })

  it.each(notObjects.filter(([name]) => name !== 'a function'))(
    'refuses %s as options',
    (_, options) => {
      expectInvalid(() => batchCall([], options), 'pushMany(', 'options')
    },
  )

  it.each(badKeys)('refuses %s as key', (_, key) => {
    expectInvalid(() => batchCall([], { key }), 'pushMany()', 'key')
  })
})
