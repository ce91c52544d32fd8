import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { readUtf8, writeUtf8 } from '../../src/codec/utf8.js'

/** The lanes' UTF-8 helpers must do exactly what Buffer#write and #toString do. */
describe('writeUtf8 / readUtf8', () => {
  const ring = Buffer.from(new SharedArrayBuffer(4096))

  it('write the bytes Buffer#write writes, and read back what Buffer#toString reads', () => {
    const reference = Buffer.alloc(4096)
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.integer({ min: 0, max: 1024 }),
        fc.integer({ min: 0, max: 1200 }),
        (text, offset, maxBytes) => {
          ring.fill(0)
          reference.fill(0)
          const written = writeUtf8(ring, text, offset, maxBytes)
          expect(written).toBe(reference.write(text, offset, maxBytes, 'utf8'))
          expect(ring.equals(reference)).toBe(true)
          expect(readUtf8(ring, offset, offset + written)).toBe(
            reference.toString('utf8', offset, offset + written),
          )
        },
      ),
      { numRuns: 500 },
    )
  })

  it('write whole characters only when the room runs out', () => {
    // 'é' is 2 bytes, '😀' 4: 3 bytes of room take 'aé', not half of the emoji.
    expect(writeUtf8(ring, 'aé😀', 0, 3)).toBe(3)
    expect(readUtf8(ring, 0, 3)).toBe('aé')
    expect(writeUtf8(ring, '😀', 0, 3)).toBe(0)
  })

  it('turn a lone surrogate into U+FFFD, as Buffer does', () => {
    const n = writeUtf8(ring, 'x\ud800y', 0, 100)
    expect(readUtf8(ring, 0, n)).toBe('x\ufffdy')
  })
})
