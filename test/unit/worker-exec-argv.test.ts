import { describe, expect, it } from 'vitest'
import { loaderFlags, workerExecArgv } from '../../src/pool/worker-exec-argv.js'

describe('loaderFlags', () => {
  it('finds module-loading flags with their values, in either form, in order', () => {
    expect(
      loaderFlags([
        '--max-old-space-size=512',
        '--import',
        'tsx',
        '--inspect-port',
        '0',
        '-r',
        './otel.cjs',
        '--conditions=development',
        '-C',
        'edge',
        '--loader=ts-node/esm',
        '--experimental-loader',
        './hooks.mjs',
        '--experimental-strip-types',
        '--enable-source-maps',
      ]),
    ).toEqual([
      '--import',
      'tsx',
      '-r',
      './otel.cjs',
      '--conditions=development',
      '-C',
      'edge',
      '--loader=ts-node/esm',
      '--experimental-loader',
      './hooks.mjs',
      '--experimental-strip-types',
    ])
  })

  it('reads what tsx hands its child process', () => {
    const argv = [
      '--require',
      '/x/tsx/dist/preflight.cjs',
      '--import',
      'file:///x/tsx/dist/loader.mjs',
    ]
    expect(loaderFlags(argv)).toEqual(argv)
  })

  it('finds none in tuning flags, and ignores a flag missing its value', () => {
    expect(loaderFlags(['--trace-warnings', '--no-deprecation', '--importx=1'])).toEqual([])
    expect(loaderFlags(['--import'])).toEqual([])
  })
})

describe('workerExecArgv', () => {
  const app = ['--max-old-space-size=512', '--import', 'tsx', '--enable-source-maps']

  it("without the option, leaves the app's flags to Node's inheritance", () => {
    expect(workerExecArgv(undefined, app)).toBeUndefined()
  })

  it("puts the app's loader flags before the user's list", () => {
    expect(workerExecArgv(['--trace-warnings'], app)).toEqual([
      '--import',
      'tsx',
      '--trace-warnings',
    ])
    expect(workerExecArgv([], app)).toEqual(['--import', 'tsx'])
  })

  it('uses a list that names a loader flag as given', () => {
    expect(workerExecArgv(['--import=./other.mjs', '--trace-warnings'], app)).toEqual([
      '--import=./other.mjs',
      '--trace-warnings',
    ])
    expect(workerExecArgv(['-C', 'edge'], app)).toEqual(['-C', 'edge'])
  })

  it("returns a new array, never the user's", () => {
    const user = ['--import', 'tsx']
    expect(workerExecArgv(user, [])).not.toBe(user)
  })
})
