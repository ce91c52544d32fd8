import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

describe('public types', () => {
  // test/types/*.ts against the built declarations: generics carry the handler's types, and
  // every @ts-expect-error marks a call that must not compile.
  it('compile where they should, and fail where they should', () => {
    let output = ''
    try {
      execFileSync(
        process.execPath,
        [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/test/types`],
        { encoding: 'utf8' },
      )
    } catch (err) {
      output = String((err as { stdout?: string }).stdout ?? err)
    }
    expect(output).toBe('')
  })
})
