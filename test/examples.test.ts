import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

/** The README shows examples/ files verbatim, and those files run: the README cannot drift. */
const root = fileURLToPath(new URL('..', import.meta.url))
const read = (path: string) => readFileSync(`${root}/${path}`, 'utf8')

/** Every ```js block of the README whose first line names an examples/ file. */
function readmeExamples(): { path: string; code: string }[] {
  const blocks = [
    ...read('README.md').matchAll(/```js\n(\/\/ (examples\/\S+)[^\n]*\n[\s\S]*?)```/g),
  ]
  return blocks.map((m) => ({ path: m[2], code: m[1] }))
}

describe('README examples', () => {
  it('show the example files exactly', () => {
    const examples = readmeExamples()
    // Broker examples (examples/sources/…) are also checked here, and run by their sources' tests.
    expect(examples.map((e) => e.path)).toEqual(
      expect.arrayContaining([
        'examples/orders/handler.js',
        'examples/orders/main.js',
        'examples/orders/metrics.js',
      ]),
    )
    for (const { path, code } of examples) expect(code, path).toBe(read(path))
  })

  it('examples/orders/main.js runs as written', () => {
    const out = execFileSync(process.execPath, [`${root}/examples/orders/main.js`], {
      encoding: 'utf8',
    })
    const digest = createHash('sha256').update('2:b@example.com').digest('hex')
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '')).toEqual({
      digest,
      acked: 1,
      completed: 1000,
      p50: true,
      unprocessed: 0,
    })
  })

  it('examples/orders/metrics.js runs as written', () => {
    const out = execFileSync(process.execPath, [`${root}/examples/orders/metrics.js`], {
      encoding: 'utf8',
      // Any free port: the example's default (9464) may be taken here.
      env: { ...process.env, METRICS_PORT: '0' },
    })
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '')).toEqual({
      sampled: true,
      completed: true,
      histogram: true,
    })
  })
})
