/**
 * The Node flags of the workers, from the user's `execArgv` option and the app's own flags.
 *
 * Without the option, workers get Node's default: the app's flags, inherited by Node itself
 * (which drops those a worker may not take, such as V8's `--max-old-space-size`; handing them
 * to a Worker explicitly is an error).
 *
 * With the option, Node would run workers with that list alone, and an app started as
 * `node --import tsx app.ts` would lose the loader that lets its workers load `handler.ts`.
 * The list is a worker's tuning (memory, inspector, warnings); how modules are found and
 * compiled is the app's, and the handler was written for it. So the app's module-loading
 * flags go first and the user's list after them, unless the list names a module-loading
 * flag of its own: then the user has taken over loading, and the list is used as given.
 */

/** Flags that register module hooks or choose how modules resolve, each with a value. */
const LOADER_FLAGS_WITH_VALUE = new Set([
  '--import',
  '--require',
  '-r',
  '--loader',
  '--experimental-loader',
  '--conditions',
  '-C',
])

/** Node's own TypeScript support, on or off. */
const LOADER_SWITCHES = new Set([
  '--experimental-strip-types',
  '--no-experimental-strip-types',
  '--experimental-transform-types',
])

/** Worker flags for the user's `execArgv` option (`undefined`: Node's inheritance). */
export function workerExecArgv(
  userExecArgv: readonly string[] | undefined,
  appExecArgv: readonly string[] = process.execArgv,
): string[] | undefined {
  if (userExecArgv === undefined) return undefined
  if (loaderFlags(userExecArgv).length > 0) return [...userExecArgv]
  return [...loaderFlags(appExecArgv), ...userExecArgv]
}

/** The module-loading flags in `argv`, in order, each with its value (`--import=x` or `--import x`). */
export function loaderFlags(argv: readonly string[]): string[] {
  const found: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    if (LOADER_FLAGS_WITH_VALUE.has(name)) {
      if (eq > 0) found.push(arg)
      else if (i + 1 < argv.length) found.push(arg, argv[++i])
    } else if (LOADER_SWITCHES.has(name)) {
      found.push(arg)
    }
  }
  return found
}
