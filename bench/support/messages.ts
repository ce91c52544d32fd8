/**
 * A fixed pool of distinct ASCII strings the suites cycle through, so no transport can win by
 * seeing the same string object every time. Deterministic: every run sends the same bytes.
 */
export function asciiMessages(count: number, bytes: number): string[] {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}[]:,"-_.'
  let seed = 0x9e3779b9
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    let s = ''
    for (let j = 0; j < bytes; j++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
      s += alphabet[seed % alphabet.length]
    }
    // Flatten now so encoding costs the same for every transport.
    out.push(Buffer.from(s, 'latin1').toString('latin1'))
  }
  return out
}
