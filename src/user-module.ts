import { createRequire } from 'node:module'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMainThread } from 'node:worker_threads'

const UNKNOWN_EXTENSION = 'ERR_UNKNOWN_FILE_EXTENSION'
const TYPESCRIPT = new Set(['.ts', '.mts', '.cts'])
const require = createRequire(import.meta.url)

/**
 * Imports a module the user named (a handler, a codec) on the thread that calls this.
 *
 * import() first, so that every module this thread's ES module loader can load keeps ES module
 * semantics. A loader may hook only the CommonJS side of a worker, though: tsx registers its
 * ES module hooks on the main thread alone before Node 22.22 / 24.11 (so on Node 20), and
 * `-r`-style hooks (ts-node/register, @swc-node/register) never had any. There import() of `handler.ts` fails with ERR_UNKNOWN_FILE_EXTENSION, while
 * require() compiles it; Piscina tries require() first for its task files and so loads them.
 * We fall back to require() only then, and only where a hook claims the extension.
 */
export async function importUserModule(href: string): Promise<{ default?: unknown }> {
  try {
    return (await import(href)) as { default?: unknown }
  } catch (err) {
    if (!href.startsWith('file:') || (err as { code?: unknown }).code !== UNKNOWN_EXTENSION) {
      throw err
    }
    const path = fileURLToPath(href)
    const extension = extname(path)
    const typescript = TYPESCRIPT.has(extension)
    if (!commonJsHookFor(typescript ? '.ts' : extension)) {
      if (typescript) throw new Error(noTypeScriptLoader(), { cause: err })
      throw err
    }
    return asNamespace(require(path))
  }
}

/**
 * Whether a CommonJS hook has registered `extension`. require.extensions is deprecated for
 * writing, but it is where every such hook registers (tsx, ts-node, pirates), so it is the one
 * place to ask. TypeScript hooks register '.ts' and serve '.mts' and '.cts' with it.
 */
function commonJsHookFor(extension: string): boolean {
  return Object.hasOwn(require.extensions, extension)
}

/** What import() would give: ES syntax compiled to CommonJS keeps its exports, else `default`. */
function asNamespace(exports: unknown): { default?: unknown } {
  const compiledEsm =
    typeof exports === 'object' &&
    exports !== null &&
    (exports as { __esModule?: unknown }).__esModule
  return compiledEsm ? (exports as { default?: unknown }) : { default: exports }
}

/** The reason, worded for handler and codec errors alike ("… could not be imported: …"). */
function noTypeScriptLoader(): string {
  const where = isMainThread ? 'the app' : 'the worker'
  // Only workers take the execArgv option; the app's own flags are given on its command line.
  const execArgv = isMainThread ? '' : ', or name one in the execArgv option'
  // A Node that can strip types itself has this flag (on by default from 23.6, where import()
  // above would have succeeded); Node 20 has neither.
  const ownSupport = process.allowedNodeEnvironmentFlags.has('--experimental-strip-types')
    ? ", or turn on Node's own TypeScript support with --experimental-strip-types"
    : ''
  return (
    `it is TypeScript and no TypeScript loader is active in ${where}: run the app under one, ` +
    `such as \`node --import tsx app.ts\` (workers inherit its flags)${execArgv}${ownSupport}; ` +
    'or compile the module to JavaScript'
  )
}
