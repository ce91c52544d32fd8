import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** One process of a broker example (examples/sources/…), as a user would start it. */
export interface ExampleProcess {
  child: ChildProcess
  exited: Promise<number | null>
  /** What it printed on stdout, and on stderr. */
  out(): string
  err(): string
  /** The one-line JSON summary it prints last, on SIGTERM. */
  report<T = Record<string, unknown>>(): T
}

/** The path of `examples/sources/<path>`. */
export function examplePath(path: string): string {
  return fileURLToPath(new URL(`../../../examples/sources/${path}`, import.meta.url))
}

/** Starts `node <file>` with `env` added to this process's environment. */
export function startExample(file: string, env: NodeJS.ProcessEnv): ExampleProcess {
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout?.on('data', (chunk) => {
    out += chunk
  })
  child.stderr?.on('data', (chunk) => {
    err += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  return {
    child,
    exited,
    out: () => out,
    err: () => err,
    report: <T>() => JSON.parse(out.trim().split('\n').at(-1) ?? '') as T,
  }
}

/** SIGKILLs whichever of these still runs: only processes a test started, by their pids. */
export function killLeft(processes: readonly ExampleProcess[]): void {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null)
      process.kill(p.child.pid!, 'SIGKILL')
  }
}
