import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { type ParseArgsConfig, parseArgs } from 'node:util'

/** A command-line mistake: printed with a hint, exit code 2. */
export class UsageError extends Error {}

/** node:util's parseArgs, strict and without positionals; its errors become UsageErrors. */
export function parseFlags(
  argv: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options })
      .values as Record<string, string | boolean | undefined>
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

/** A number flag: `fallback` when absent, a UsageError when not a number ≥ `min`. */
export function numberFlag(
  flag: string,
  value: string | undefined,
  fallback: number,
  min: number,
): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < min) {
    throw new UsageError(`--${flag} must be a number ≥ ${min}, got '${value}'`)
  }
  return n
}

/** A path flag that must name an existing file: its absolute path. */
export function existingFile(flag: string, path: string): string {
  const full = resolve(path)
  if (!existsSync(full)) throw new UsageError(`--${flag}: no such file: ${full}`)
  return full
}
