import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConveyorError } from '../../src/errors.js'
import {
  COMPLETION_PREFIX,
  Completion,
  completionBytes,
  readCompletion,
  writeCompletion,
} from '../../src/lane/completion.js'
import {
  deserializeError,
  errorText,
  isOwnError,
  type SerializedError,
  serializeError,
} from '../../src/lane/error-wire.js'

const U32 = 2 ** 32

function roundTrip(
  at: number,
  start: number,
  attempt: number,
  text: string,
  rest: Uint8Array | undefined,
) {
  const out = Buffer.alloc(at + COMPLETION_PREFIX + Buffer.byteLength(text) + (rest?.length ?? 0))
  const length = writeCompletion(out, at, start, attempt, text, rest)
  return { out, length, view: readCompletion(out, at, length) }
}

describe('completion records', () => {
  it('numbers the kinds as the ring tags expect', () => {
    expect(Completion).toEqual({ RESULT: 1, FAILED: 2, GAVE_UP: 3, ABORTED: 4 })
    expect(COMPLETION_PREFIX).toBe(12)
  })

  it('round-trips a RESULT: no error text, the serialized result as rest', () => {
    const rest = new Uint8Array([1, 2, 3, 4, 5])
    const { out, length, view } = roundTrip(16, 4096, 1, '', rest)
    expect(length).toBe(completionBytes(0, 5))
    expect(view).toEqual({
      start: 4096,
      attempt: 1,
      errorText: '',
      restOffset: 16 + COMPLETION_PREFIX,
      restLength: 5,
    })
    expect([...out.subarray(view.restOffset, view.restOffset + view.restLength)]).toEqual([
      1, 2, 3, 4, 5,
    ])
  })

  it('round-trips a FAILED with error text and the payload', () => {
    const text = JSON.stringify(serializeError(new Error('bad input')))
    const payload = Buffer.from('{"id":7}')
    const { out, length, view } = roundTrip(0, 8, 2, text, payload)
    expect(length).toBe(completionBytes(Buffer.byteLength(text), payload.length))
    expect(view.errorText).toBe(text)
    expect(view.attempt).toBe(2)
    expect(out.subarray(view.restOffset, view.restOffset + view.restLength)).toEqual(payload)
  })

  it('round-trips a GAVE_UP with multi-byte UTF-8 error text and an empty payload', () => {
    const text = JSON.stringify({ name: 'Error', message: 'échec ✗ 🚚 失败' })
    const { length, view } = roundTrip(3, 1, 3, text, new Uint8Array(0))
    expect(Buffer.byteLength(text)).toBeGreaterThan(text.length)
    expect(length).toBe(completionBytes(Buffer.byteLength(text), 0))
    expect(view.errorText).toBe(text)
    expect(view.restLength).toBe(0)
    expect(view.restOffset).toBe(3 + length)
  })

  it('reads no rest when none was written', () => {
    const { length, view } = roundTrip(0, 0, 1, '{"name":"Error","message":"x"}', undefined)
    expect(view.restLength).toBe(0)
    expect(view.restOffset).toBe(length)
  })

  it('stores start as u32, whether given as u32 or int32', () => {
    const start = U32 - 8
    expect(roundTrip(0, start, 1, '', undefined).view.start).toBe(start)
    expect(roundTrip(0, start | 0, 1, '', undefined).view.start).toBe(start)
  })

  it('round-trips any start, attempt, text and rest', () => {
    const start = fc.oneof(
      fc.integer({ min: 1, max: 1024 }).map((k) => U32 - 8 * k),
      fc.integer({ min: 0, max: U32 / 8 - 1 }).map((k) => 8 * k),
    )
    const text = fc.oneof(
      fc.constant(''),
      fc.string({ unit: 'grapheme', minLength: 1 }).map((m) => JSON.stringify({ message: m })),
    )
    const rest = fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined })
    fc.assert(
      fc.property(
        fc.nat(64),
        start,
        fc.integer({ min: 1, max: 255 }),
        text,
        rest,
        (at, s, attempt, t, r) => {
          const { out, length, view } = roundTrip(at, s, attempt, t, r)
          const restBytes = r?.length ?? 0
          expect(length).toBe(completionBytes(Buffer.byteLength(t), restBytes))
          expect(view.start).toBe(s)
          expect(view.attempt).toBe(attempt)
          expect(view.errorText).toBe(t)
          expect(view.restLength).toBe(restBytes)
          expect(view.restOffset + view.restLength).toBe(at + length)
          if (r) expect(out.subarray(view.restOffset, at + length)).toEqual(Buffer.from(r))
        },
      ),
      { numRuns: 200 },
    )
  })
})

describe('serializeError', () => {
  it('keeps an Error’s name, message and stack', () => {
    const err = new TypeError('no such field')
    expect(serializeError(err)).toEqual({
      name: 'TypeError',
      message: 'no such field',
      stack: err.stack,
      code: undefined,
    })
  })

  it('keeps a string code and drops any other', () => {
    const withCode = Object.assign(new Error('reset'), { code: 'ECONNRESET' })
    expect(serializeError(withCode).code).toBe('ECONNRESET')
    const numeric = Object.assign(new Error('http'), { code: 503 })
    expect(serializeError(numeric).code).toBeUndefined()
  })

  it('lets a forced code win over the error’s own', () => {
    const withCode = Object.assign(new Error('reset'), { code: 'ECONNRESET' })
    expect(serializeError(withCode, 'DECODE_FAILED').code).toBe('DECODE_FAILED')
    expect(serializeError(new Error('x'), 'RESULT_ENCODE_FAILED').code).toBe('RESULT_ENCODE_FAILED')
  })

  it('keeps a ConveyorError’s name and code', () => {
    const e = serializeError(new ConveyorError('WORKER_DIED', 'gone'))
    expect(e.name).toBe('ConveyorError')
    expect(e.code).toBe('WORKER_DIED')
  })

  it.each([
    ['a string', 'oops', 'non-Error thrown: oops'],
    ['a number', 42, 'non-Error thrown: 42'],
    ['undefined', undefined, 'non-Error thrown: undefined'],
    ['null', null, 'non-Error thrown: null'],
    ['an object', { a: 1 }, 'non-Error thrown: [object Object]'],
    ['a symbol', Symbol('s'), 'non-Error thrown: Symbol(s)'],
  ])('wraps %s thrown as an Error-shaped object', (_, thrown, message) => {
    expect(serializeError(thrown)).toEqual({ name: 'Error', message, code: undefined })
    expect(serializeError(thrown, 'DECODE_FAILED')).toEqual({
      name: 'Error',
      message,
      code: 'DECODE_FAILED',
    })
  })

  // String() throws on an object without a prototype: had serializeError let that through, in
  // the worker's catch block, the handler's failure would have become a worker death.
  it('wraps a thrown object without a prototype, or whose toString throws', () => {
    expect(serializeError(Object.create(null)).message).toMatch(/^non-Error thrown: /)
    const hostile = {
      toString() {
        throw new Error('no')
      },
    }
    expect(serializeError(hostile).message).toMatch(/^non-Error thrown: /)
    const error = new Error('x')
    Object.defineProperty(error, 'message', {
      get() {
        throw new Error('getter')
      },
    })
    expect(serializeError(error)).toMatchObject({ name: 'Error', message: '' })
  })
})

describe('errorText', () => {
  it('is the whole JSON when it fits', () => {
    const error = serializeError(Object.assign(new Error('boom'), { code: 'E_BOOM' }))
    const text = errorText(error, 1 << 20)
    expect(text).toBe(JSON.stringify(error))
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(error)))
  })

  it('drops the stack first, then cuts the message', () => {
    const error: SerializedError = {
      name: 'RangeError',
      message: 'm'.repeat(100),
      stack: 's'.repeat(10_000),
      code: 'E_X',
    }
    const stackless = JSON.parse(errorText(error, 1000))
    expect(stackless).toEqual({ name: 'RangeError', message: 'm'.repeat(100), code: 'E_X' })
    const cut = JSON.parse(errorText({ ...error, message: 'm'.repeat(10_000) }, 1000))
    expect(cut.name).toBe('RangeError')
    expect(cut.code).toBe('E_X')
    expect(cut.stack).toBeUndefined()
    expect(cut.message.length).toBeGreaterThan(0)
    expect(cut.message.length).toBeLessThan(1000)
  })

  it('falls back to a plain Error when the name alone overflows', () => {
    const error: SerializedError = { name: 'N'.repeat(5000), message: 'short', code: 'E_X' }
    const text = errorText(error, 400)
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(400)
    expect(JSON.parse(text)).toEqual({ name: 'Error', message: 'short' })
  })

  it('falls back when the code alone overflows', () => {
    const error: SerializedError = { name: 'Error', message: 'short', code: 'C'.repeat(5000) }
    expect(JSON.parse(errorText(error, 400))).toEqual({ name: 'Error', message: 'short' })
  })

  it('fits any error in any room ≥ 300 bytes, as JSON whose message is a prefix', () => {
    // Lone surrogates and control characters are what JSON escapes into 6 bytes.
    const unit = fc.oneof(
      fc.constantFrom('a', 'é', '✗', '失', '🚚', '"', '\\', '\n', '\u0001', '\ud83d', '\udca9'),
      fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)),
    )
    const text = (max: number) =>
      fc
        .tuple(fc.string({ unit, maxLength: 24 }), fc.integer({ min: 1, max: max }))
        .map(([s, n]) => s.repeat(n))
    const error = fc.record(
      {
        name: fc.oneof(fc.constant('Error'), text(2000)),
        message: text(4000),
        stack: text(4000),
        code: fc.oneof(fc.constant('E_CODE'), fc.constant('DECODE_FAILED'), text(500)),
      },
      { requiredKeys: ['name', 'message'] },
    )
    fc.assert(
      fc.property(error, fc.integer({ min: 300, max: 1 << 16 }), (e, room) => {
        const t = errorText(e, room)
        if (Buffer.byteLength(t) > room) {
          throw new Error(`${Buffer.byteLength(t)} bytes of error text in a room of ${room}`)
        }
        const back = deserializeError(t)
        if (!(back instanceof Error)) throw new Error('not an Error')
        if (!e.message.startsWith(back.message)) throw new Error('message is not a prefix')
        if (t === JSON.stringify(e) && back.message !== e.message) throw new Error('message cut')
      }),
      { numRuns: 300 },
    )
  })
})

describe('deserializeError', () => {
  it.each(['RESULT_ENCODE_FAILED', 'DECODE_FAILED'] as const)(
    'gives a ConveyorError for conveyor’s own code %s',
    (code) => {
      const back = deserializeError(
        JSON.stringify({ name: 'SyntaxError', message: 'bad bytes', stack: 'at x', code }),
      )
      expect(back).toBeInstanceOf(ConveyorError)
      expect(back.name).toBe('ConveyorError')
      expect(back.code).toBe(code)
      expect(back.message).toBe('bad bytes')
      expect(isOwnError(back)).toBe(true)
    },
  )

  it('gives a plain Error with the name, code and stack kept otherwise', () => {
    const back = deserializeError(
      JSON.stringify({
        name: 'TypeError',
        message: 'nope',
        stack: 'TypeError: nope\n  at h',
        code: 'E_H',
      }),
    )
    expect(back).not.toBeInstanceOf(ConveyorError)
    expect(back).toBeInstanceOf(Error)
    expect(back.name).toBe('TypeError')
    expect(back.message).toBe('nope')
    expect(back.stack).toBe('TypeError: nope\n  at h')
    expect(back.code).toBe('E_H')
    expect(isOwnError(back)).toBe(false)
  })

  it('leaves code absent when none was sent', () => {
    const back = deserializeError(JSON.stringify({ name: 'Error', message: 'm' }))
    expect(back.code).toBeUndefined()
    expect('code' in back).toBe(false)
    expect(typeof back.stack).toBe('string')
  })

  it('keeps other ConveyorError codes as plain Errors that are not conveyor’s own step', () => {
    const text = errorText(serializeError(new ConveyorError('WORKER_DIED', 'gone')), 4096)
    const back = deserializeError(text)
    expect(back).not.toBeInstanceOf(ConveyorError)
    expect(back.name).toBe('ConveyorError')
    expect(back.code).toBe('WORKER_DIED')
    expect(isOwnError(back)).toBe(false)
  })

  it('round-trips through serializeError and errorText', () => {
    const err = Object.assign(new RangeError('too far: ✗ 🚚'), { code: 'E_RANGE' })
    const back = deserializeError(errorText(serializeError(err), 1 << 16))
    expect(back.name).toBe('RangeError')
    expect(back.message).toBe(err.message)
    expect(back.stack).toBe(err.stack)
    expect(back.code).toBe('E_RANGE')
  })
})

describe('isOwnError', () => {
  it('is true only for conveyor’s own step codes', () => {
    expect(isOwnError(new ConveyorError('DECODE_FAILED', 'x'))).toBe(true)
    expect(isOwnError(new ConveyorError('RESULT_ENCODE_FAILED', 'x'))).toBe(true)
    expect(isOwnError(new ConveyorError('WORKER_DIED', 'x'))).toBe(false)
    expect(isOwnError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false)
    expect(isOwnError(new Error('x'))).toBe(false)
  })
})
