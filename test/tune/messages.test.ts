import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { UsageError } from '../../src/cli/flags.js'
import { parseLaneBytes, parseThreads } from '../../src/cli/tune/args.js'
import { generateMessages, parseNdjson } from '../../src/cli/tune/messages.js'
import { median, toBatches } from '../../src/cli/tune/sweep.js'
import { cpuCeiling } from '../../src/tune/cpu-ceiling.js'

const fixture = (name: string) =>
  pathToFileURL(fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))).href

describe('NDJSON messages', () => {
  it('one value per line; blank lines, CRLF and a trailing newline skipped', () => {
    expect(parseNdjson('{"a":1}\r\n\n  \n2\n"three"\n[4]\nnull\n')).toEqual([
      { a: 1 },
      2,
      'three',
      [4],
      null,
    ])
  })

  it('a line that is not JSON: a UsageError naming its (1-based) line number', () => {
    const bad = () => parseNdjson('{"a":1}\n\n{"b":\n3\n', 'file.ndjson')
    expect(bad).toThrow(UsageError)
    expect(bad).toThrow(/^file\.ndjson: line 3 is not JSON/)
  })

  it('two values on one line are one bad line', () => {
    expect(() => parseNdjson('1\n{"a":1} {"b":2}\n')).toThrow(/line 2 is not JSON/)
  })

  it('no messages at all: a UsageError', () => {
    expect(() => parseNdjson('\n \n')).toThrow(/no messages/)
  })
})

describe('generator modules', () => {
  it('(i) => message: called for 0..count-1', async () => {
    const messages = await generateMessages(fixture('tune-generator.mjs'), 5)
    expect(messages).toEqual([0, 1, 2, 3, 4].map((id) => ({ id, email: `user${id}@example.com` })))
  })

  it('a generator function: iterated until it ends or count', async () => {
    expect(await generateMessages(fixture('tune-generator-star.mjs'))).toHaveLength(10)
    expect(await generateMessages(fixture('tune-generator-star.mjs'), 4)).toHaveLength(4)
  })

  it('a module without a default function: a UsageError', async () => {
    await expect(generateMessages(fixture('no-default.mjs'))).rejects.toThrow(/export default/)
  })
})

describe('sweep helpers', () => {
  it('toBatches covers every message, in batches of 64, a short list repeated', () => {
    const one = toBatches(['a'])
    expect(one).toHaveLength(1)
    expect(one[0]).toHaveLength(64)
    const many = toBatches(Array.from({ length: 100 }, (_, i) => i))
    expect(many).toHaveLength(2)
    expect(new Set(many.flat())).toEqual(new Set(Array.from({ length: 100 }, (_, i) => i)))
  })

  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})

describe('tune flags', () => {
  it('--threads: a range, a list, a count; sorted, deduplicated', () => {
    expect(parseThreads('1..3')).toEqual([1, 2, 3])
    expect(parseThreads('4,1,2,2')).toEqual([1, 2, 4])
    expect(parseThreads('1')).toEqual([1])
    expect(parseThreads(undefined)).toEqual(
      Array.from({ length: cpuCeiling().cpus }, (_, i) => i + 1),
    )
  })

  it.each(['0', '3..1', 'two', '1,,2', '1.5', String(cpuCeiling().cpus * 4 + 1)])(
    '--threads %s is a UsageError',
    (value) => {
      expect(() => parseThreads(value)).toThrow(UsageError)
    },
  )

  it('--lane-bytes: suffixes, sorted', () => {
    expect(parseLaneBytes('1m,64k')).toEqual([65536, 1 << 20])
    expect(parseLaneBytes('4096')).toEqual([4096])
    expect(() => parseLaneBytes('3000')).toThrow(/powers of two/)
    expect(() => parseLaneBytes('1k')).toThrow(/powers of two/)
  })
})
