/**
 * How many CPUs this process may keep busy at once: the unit of the thread ceiling.
 *
 *   cpus = min(affinity, max(1, ⌊cgroup CPU quota / period⌋))
 *
 * (the user's own `threads.max` is applied by the caller, `src/queue/options.ts`).
 *
 * Why read the cgroup files here rather than trust `os.availableParallelism()`: what Node
 * reports has changed more than once, and was wrong in a different way each time.
 * - Node 20 (libuv 1.46) and Node ≤ 22.11: the affinity mask only. In a pod limited to 2 CPUs
 *   on a 64-core host it says 64.
 * - libuv 1.49.1 (Node 22.12 on) reads the quota, but on cgroup v2 also scaled it by
 *   `cpu.weight`, so a 4-CPU Kubernetes pod with no CPU request got 1 (libuv#4740,
 *   nodejs/node#58428), until libuv#4746 dropped the weight, following Rust's
 *   `available_parallelism()`.
 * - Even then, a quota below one CPU (`docker --cpus=0.25`) is ignored and the host's count
 *   comes back (nodejs/node#59200).
 * A minimum with `availableParallelism()` would inherit the second bug (1 instead of 4), so the
 * affinity is read from `/proc/self/status` (`Cpus_allowed_list`: what sched_getaffinity(2)
 * returns, which libuv counts), and `availableParallelism()` is only the fallback where that
 * cannot be read (non-Linux systems, where libuv reads no cgroups either, or a Linux without
 * /proc). This is right on every Node version: nothing from a Node version enters the result
 * except through that fallback.
 *
 * cpu.weight / cpu.shares are deliberately ignored: they are relative priorities under
 * contention, not a limit (libuv#4740). cpuset limits need no reading: the kernel already
 * narrows the affinity mask to them.
 *
 * Reading never throws and never waits on anything but a few small files of procfs/cgroupfs
 * (in-memory): a file that is missing, unreadable or holds garbage is skipped, and the result
 * says so (`notes`), down to the plain affinity.
 */
import { readFileSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'

/** Which limit set `cpus`. */
export type CpuCeilingSource = 'affinity' | 'cgroup-v1' | 'cgroup-v2'

export interface CpuCeiling {
  /** Whole CPUs this process may keep busy at once, ≥ 1: what `threads: 'auto'` starts. */
  readonly cpus: number
  /**
   * What set `cpus`: the CPU affinity mask, or a cgroup CPU quota at or below it (a quota
   * equal to the affinity is named: it would still hold on a larger host).
   */
  readonly source: CpuCeilingSource
  /**
   * CPUs the process may run on: its affinity mask (online CPUs only), or
   * os.availableParallelism() where the mask cannot be read.
   */
  readonly affinity: number
  /**
   * The tightest cgroup CPU quota found, in CPUs (quota / period, unrounded: 2.5), whether or
   * not it set `cpus`. Absent when there is no quota (or it could not be read).
   */
  readonly quota?: number
  /** The file that quota was read from. */
  readonly quotaFile?: string
  /**
   * Where `cpus` came from, short enough for a message:
   * 'cgroup v2 cpu.max 250000/100000 = 2.5 CPUs', 'CPU affinity; no cgroup CPU quota'.
   */
  readonly detail: string
  /** What else was read, skipped or guessed, and why (for stats() and the CLI). */
  readonly notes: readonly string[]
}

/** Where to read from; every field has the real system's default. Tests point them at fixtures. */
export interface CpuCeilingSources {
  /** The cgroup mount root. @default '/sys/fs/cgroup' */
  cgroupRoot?: string
  /** The process's cgroup membership. @default '/proc/self/cgroup' */
  procSelfCgroup?: string
  /** The process's status, for its affinity mask (`Cpus_allowed_list`). @default '/proc/self/status' */
  procSelfStatus?: string
  /** The online CPUs, a cpu list. @default '/sys/devices/system/cpu/online' */
  cpuOnline?: string
  /** Only Linux has cgroups and /proc. @default process.platform */
  platform?: NodeJS.Platform
  /** The affinity where the mask cannot be read. @default os.availableParallelism */
  availableParallelism?: () => number
}

/**
 * Deeper cgroup paths than this are not walked (real ones are a handful of levels): a bound on
 * the files read, whatever /proc/self/cgroup says.
 */
const MAX_DEPTH = 32

/** A cpu list naming more CPUs than this is taken for garbage (Linux's NR_CPUS is ≤ 8192). */
const MAX_CPUS = 1 << 16

let cached: CpuCeiling | undefined

/**
 * The ceiling of this process, read once (createQueue calls it) and cached: a CPU quota or an
 * affinity mask rarely changes while a process runs, and the online controller (issue 9)
 * measures rather than re-reads. `refresh` reads again and caches that.
 */
export function cpuCeiling(refresh = false): CpuCeiling {
  if (refresh || !cached) cached = readCpuCeiling()
  return cached
}

/** Reads the ceiling now, from `sources` (the real system by default). Never throws. */
export function readCpuCeiling(sources: CpuCeilingSources = {}): CpuCeiling {
  const notes: string[] = []
  const given = sources.availableParallelism ?? availableParallelism
  const viaNode = (): Affinity => {
    try {
      return { cpus: atLeastOne(given()), how: 'os.availableParallelism()' }
    } catch (err) {
      notes.push(`os.availableParallelism(): ${describeError(err)}`)
      return { cpus: 1, how: 'os.availableParallelism()' }
    }
  }
  let affinity: Affinity
  try {
    affinity = readAffinity(sources, viaNode, notes)
  } catch (err) {
    // Unreachable by design (every read is guarded); a bug here must not stop createQueue.
    notes.push(`affinity: ${describeError(err)}`)
    affinity = viaNode()
  }
  let quota: Quota | undefined
  try {
    if ((sources.platform ?? process.platform) === 'linux') quota = readQuota(sources, notes)
  } catch (err) {
    notes.push(`cgroup: ${describeError(err)}`)
  }
  return Object.freeze(combine(affinity, quota, Object.freeze(notes)))
}

interface Affinity {
  cpus: number
  /** What it was read from, for `detail`. */
  how: 'CPU affinity' | 'os.availableParallelism()'
}

interface Quota {
  version: 1 | 2
  quota: number
  period: number
  file: string
}

function combine(affinity: Affinity, quota: Quota | undefined, notes: readonly string[]) {
  if (quota) {
    const { version, quota: q, period } = quota
    const exact = q / period
    const whole = Math.max(1, (q - (q % period)) / period)
    const raw =
      version === 2
        ? `cgroup v2 cpu.max ${q}/${period}`
        : `cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us ${q}/${period}`
    if (whole <= affinity.cpus) {
      let detail = raw
      if (exact < 1) detail += ` = ${cpusText(q, period)} CPU, at least 1`
      else if (whole !== exact) detail += ` = ${cpusText(q, period)} CPUs`
      return {
        cpus: whole,
        source: version === 2 ? ('cgroup-v2' as const) : ('cgroup-v1' as const),
        affinity: affinity.cpus,
        quota: exact,
        quotaFile: quota.file,
        detail,
        notes,
      }
    }
    return {
      cpus: affinity.cpus,
      source: 'affinity' as const,
      affinity: affinity.cpus,
      quota: exact,
      quotaFile: quota.file,
      detail: `${affinity.how}; ${raw} allows more`,
      notes,
    }
  }
  return {
    cpus: affinity.cpus,
    source: 'affinity' as const,
    affinity: affinity.cpus,
    detail: `${affinity.how}; no cgroup CPU quota`,
    notes,
  }
}

// ---- affinity ----------------------------------------------------------------------------

function readAffinity(
  sources: CpuCeilingSources,
  viaNode: () => Affinity,
  notes: string[],
): Affinity {
  if ((sources.platform ?? process.platform) !== 'linux') return viaNode()
  const statusFile = sources.procSelfStatus ?? '/proc/self/status'
  const status = readText(statusFile, notes)
  if (status === undefined) return viaNode()
  const listed = /^Cpus_allowed_list:[ \t]*(\S*)[ \t]*$/m.exec(status)?.[1]
  const allowed = listed === undefined ? undefined : parseCpuList(listed)
  if (!allowed) {
    notes.push(`${statusFile}: no readable Cpus_allowed_list, using os.availableParallelism()`)
    return viaNode()
  }
  // The mask may name CPUs that are not online (a VM's hot-plug slots: "0-127" on 2 CPUs);
  // sched_getaffinity(2) leaves those out, and so does this.
  const onlineFile = sources.cpuOnline ?? '/sys/devices/system/cpu/online'
  const onlineText = readText(onlineFile, notes)
  const online = onlineText === undefined ? undefined : parseCpuList(onlineText.trim())
  if (onlineText !== undefined && !online) notes.push(`${onlineFile}: not a cpu list, ignored`)
  const cpus = online ? countBoth(allowed, online) : countCpus(allowed)
  if (cpus < 1) {
    notes.push(`${statusFile}: no online CPU in Cpus_allowed_list ${listed}`)
    return viaNode()
  }
  return { cpus, how: 'CPU affinity' }
}

/** [first, last] inclusive, sorted, not overlapping. */
type CpuRanges = [number, number][]

/**
 * A kernel cpu list ("0-3,8,10-11"), as sorted disjoint ranges; undefined for anything else
 * (an empty list included: a process always has a CPU).
 */
export function parseCpuList(text: string): CpuRanges | undefined {
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) return undefined
  const ranges: CpuRanges = []
  let total = 0
  for (const part of text.split(',')) {
    const [first, last = first] = part.split('-').map(Number)
    if (!(first <= last)) return undefined
    total += last - first + 1
    if (total > MAX_CPUS) return undefined
    ranges.push([first, last])
  }
  ranges.sort((a, b) => a[0] - b[0])
  const merged: CpuRanges = []
  for (const [first, last] of ranges) {
    const prev = merged[merged.length - 1]
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last)
    else merged.push([first, last])
  }
  return merged
}

function countCpus(ranges: CpuRanges): number {
  return ranges.reduce((n, [first, last]) => n + last - first + 1, 0)
}

function countBoth(a: CpuRanges, b: CpuRanges): number {
  let n = 0
  for (const [a0, a1] of a) {
    for (const [b0, b1] of b) n += Math.max(0, Math.min(a1, b1) - Math.max(a0, b0) + 1)
  }
  return n
}

// ---- cgroups -----------------------------------------------------------------------------

interface CgroupLine {
  id: string
  controllers: string[]
  path: string
}

/** /proc/self/cgroup: `hierarchy-id:controller,list:/path` per line (the path may hold ':'). */
function parseProcCgroup(text: string): CgroupLine[] {
  const lines: CgroupLine[] = []
  for (const line of text.split('\n')) {
    const first = line.indexOf(':')
    const second = line.indexOf(':', first + 1)
    if (first <= 0 || second < 0) continue
    const path = line.slice(second + 1)
    if (!path.startsWith('/')) continue
    const controllers = line.slice(first + 1, second)
    lines.push({
      id: line.slice(0, first),
      controllers: controllers === '' ? [] : controllers.split(','),
      path,
    })
  }
  return lines
}

function readQuota(sources: CpuCeilingSources, notes: string[]): Quota | undefined {
  const root = sources.cgroupRoot ?? '/sys/fs/cgroup'
  const cgroupFile = sources.procSelfCgroup ?? '/proc/self/cgroup'
  const text = readText(cgroupFile, notes)
  if (text === undefined) return undefined
  const lines = parseProcCgroup(text)
  if (lines.length === 0) {
    notes.push(`${cgroupFile}: no cgroup line in ${JSON.stringify(clip(text))}`)
    return undefined
  }
  // A controller is attached to one hierarchy only: if a v1 hierarchy has `cpu`, that is where
  // the quota lives, even when a v2 hierarchy is mounted beside it (systemd's hybrid mode).
  const v1 = lines.find((l) => l.id !== '0' && l.controllers.includes('cpu'))
  if (v1) return readV1(root, v1, notes)
  const v2 = lines.find((l) => l.id === '0' && l.controllers.length === 0)
  if (v2) return readV2(root, v2, notes)
  notes.push(`${cgroupFile}: no cgroup v1 cpu controller and no cgroup v2 line`)
  return undefined
}

function readV2(root: string, line: CgroupLine, notes: string[]): Quota | undefined {
  // Pure v2 mounts at the root; systemd's hybrid mode mounts it at root/unified.
  const mount = [root, join(root, 'unified')].find((dir) => isFile(join(dir, 'cgroup.controllers')))
  if (!mount) {
    notes.push(`no cgroup v2 mount at ${root} (no cgroup.controllers)`)
    return undefined
  }
  return tightest(groupDirs(mount, line.path, notes), (dir) => {
    const file = join(dir, 'cpu.max')
    // Absent where the cpu controller is not enabled for the group, and at the root.
    const text = readText(file, notes, true)
    if (text === undefined) return undefined
    const match = /^(max|\d+)\s+(\d+)\s*$/.exec(text.trim())
    const quota = match && match[1] !== 'max' ? wholeNumber(match[1]) : undefined
    const period = match ? wholeNumber(match[2]) : undefined
    if (match?.[1] === 'max' && period) return undefined // no limit at this level
    if (quota && period) return { version: 2, quota, period, file }
    notes.push(`${file}: not "max PERIOD" or "QUOTA PERIOD": ${JSON.stringify(clip(text))}`)
    return undefined
  })
}

function readV1(root: string, line: CgroupLine, notes: string[]): Quota | undefined {
  // The hierarchy is mounted under the name of its controllers ("cpu,cpuacct"), usually with a
  // link per controller ("cpu" → "cpu,cpuacct"); either order of names is seen in the wild.
  const names = [line.controllers.join(','), 'cpu', 'cpu,cpuacct', 'cpuacct,cpu']
  const mount = names.map((name) => join(root, name)).find(isDirectory)
  if (!mount) {
    notes.push(`no cgroup v1 cpu mount under ${root} (tried ${[...new Set(names)].join(', ')})`)
    return undefined
  }
  return tightest(groupDirs(mount, line.path, notes), (dir) => {
    const quotaFile = join(dir, 'cpu.cfs_quota_us')
    const quotaText = readText(quotaFile, notes, true)
    if (quotaText === undefined) return undefined
    const trimmed = quotaText.trim()
    if (trimmed === '-1') return undefined // no limit at this level
    const quota = wholeNumber(trimmed)
    if (!quota) {
      notes.push(`${quotaFile}: not -1 or a number of µs: ${JSON.stringify(clip(quotaText))}`)
      return undefined
    }
    const periodFile = join(dir, 'cpu.cfs_period_us')
    const periodText = readText(periodFile, notes)
    if (periodText === undefined) return undefined
    const period = wholeNumber(periodText.trim())
    if (period) return { version: 1, quota, period, file: quotaFile }
    notes.push(`${periodFile}: not a number of µs: ${JSON.stringify(clip(periodText))}`)
    return undefined
  })
}

/**
 * The process's group and each parent up to the mount, deepest first: a parent's quota limits
 * its children too, so every level counts.
 *
 * The path in /proc/self/cgroup is relative to the hierarchy's root, but a container often sees
 * its own group as the mount (cgroup v1 without a cgroup namespace: the path says
 * /kubepods/pod…/abc, the mount is that group already). So when the full path is not there, the
 * leading components are dropped one by one until a directory is: at worst the mount itself,
 * the container's own group. Parents above what the container sees cannot be read.
 */
function groupDirs(mount: string, path: string, notes: string[]): string[] {
  let segments = path.split('/').filter((s) => s !== '' && s !== '.')
  if (segments.includes('..') || segments.length > MAX_DEPTH) {
    // '..': the group is outside this cgroup namespace's view.
    notes.push(`cgroup path ${path} cannot be followed: reading ${mount}`)
    segments = []
  }
  for (let drop = 0; drop <= segments.length; drop++) {
    const dir = join(mount, ...segments.slice(drop))
    if (drop < segments.length && !isDirectory(dir)) continue
    if (drop > 0) {
      notes.push(`${join(mount, ...segments)} is not visible here: reading ${dir} and up`)
    }
    const dirs = [dir]
    for (let depth = segments.length - drop; depth > 0; depth--) {
      dirs.push(join(mount, ...segments.slice(drop, drop + depth - 1)))
    }
    return dirs
  }
  return [mount]
}

/** The smallest quota (in CPUs) that `readLevel` finds among `dirs`. */
function tightest(
  dirs: string[],
  readLevel: (dir: string) => Quota | undefined,
): Quota | undefined {
  let best: Quota | undefined
  for (const dir of dirs) {
    const quota = readLevel(dir)
    if (quota && (!best || quota.quota / quota.period < best.quota / best.period)) best = quota
  }
  return best
}

// ---- small helpers -----------------------------------------------------------------------

/**
 * A file's text, or undefined with a note saying why. `optional`: a missing file is expected
 * (a level without a quota file) and goes unnoted.
 */
function readText(file: string, notes: string[], optional = false): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    if (!(optional && (err as NodeJS.ErrnoException).code === 'ENOENT')) {
      notes.push(`${file}: ${describeError(err)}`)
    }
    return undefined
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** A positive safe integer written in decimal digits, or undefined. */
function wholeNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

function atLeastOne(n: number): number {
  return Number.isFinite(n) && n >= 1 ? Math.floor(n) : 1
}

/**
 * quota / period for a message, truncated to 3 decimals, never rounded up: 199999/100000 is
 * "1.999", not "2" next to a ceiling of 1. Integer arithmetic, so no float artefacts.
 */
function cpusText(quota: number, period: number): string {
  const scaled = quota * 1000
  const thousandths = Number.isSafeInteger(scaled) ? (scaled - (scaled % period)) / period : NaN
  if (Number.isNaN(thousandths)) return String(quota / period)
  return thousandths === 0 ? '< 0.001' : String(thousandths / 1000)
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text
}

function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  return e?.code ?? String(e?.message ?? err)
}
