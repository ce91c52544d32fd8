import { describe, expect, it } from 'vitest'
import { ConveyorError } from '../../src/errors.js'
import { keyOf, pendingOfPush } from '../../src/queue/admission.js'

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

describe('pendingOfPush', () => {
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
    expect(pendingOfPush({ ack, nack })).toEqual({ kind: 'push', ack, nack })
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

describe('keyOf', () => {
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
