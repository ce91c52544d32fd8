import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type CpuCeilingSources,
  cpuCeiling,
  parseCpuList,
  readCpuCeiling,
} from '../../src/tune/cpu-ceiling.js'

/**
 * Each test builds a small file tree standing in for /proc and /sys: `proc/self/cgroup`,
 * `proc/self/status`, `cpu/online` and `cgroup/…` (the mount root, /sys/fs/cgroup). A host of
 * 64 CPUs by default; os.availableParallelism() is a stub that says 99, so a test sees when it
 * is used.
 */
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const NODE_SAYS = 99

function machine(files: Record<string, string>, cpuCount = 64): CpuCeilingSources {
  const dir = mkdtempSync(join(tmpdir(), 'cpu-ceiling-'))
  dirs.push(dir)
  const all: Record<string, string> = {
    'proc/self/status': `Name:\tnode\nCpus_allowed:\tffffffff\nCpus_allowed_list:\t0-${cpuCount - 1}\nMems_allowed_list:\t0\n`,
    'cpu/online': `0-${cpuCount - 1}\n`,
    ...files,
  }
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  mkdirSync(join(dir, 'cgroup'), { recursive: true })
  return {
    cgroupRoot: join(dir, 'cgroup'),
    procSelfCgroup: join(dir, 'proc/self/cgroup'),
    procSelfStatus: join(dir, 'proc/self/status'),
    cpuOnline: join(dir, 'cpu/online'),
    platform: 'linux',
    availableParallelism: () => NODE_SAYS,
  }
}

/** A cgroup v2 machine: the process in `path`, `cpu.max` per group (relative to the mount). */
function v2(path: string, cpuMax: Record<string, string>, cpuCount?: number) {
  const files: Record<string, string> = {
    'proc/self/cgroup': `0::${path}\n`,
    'cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n',
  }
  for (const [group, text] of Object.entries(cpuMax)) files[join('cgroup', group, 'cpu.max')] = text
  if (!files[join('cgroup', path, 'cgroup.controllers')]) {
    files[join('cgroup', path, 'cgroup.controllers')] = 'cpu memory pids\n'
  }
  return machine(files, cpuCount)
}

/**
 * A cgroup v1 machine with the cpu controller mounted at `mount` (e.g. 'cpu,cpuacct'): the
 * process in `path`, [quota, period] per group.
 */
function v1(
  path: string,
  quotas: Record<string, [string, string]>,
  { controllers = 'cpu,cpuacct', mount = 'cpu,cpuacct' } = {},
) {
  const files: Record<string, string> = {
    'proc/self/cgroup': `12:pids:${path}\n4:${controllers}:${path}\n3:memory:${path}\n1:name=systemd:${path}\n0::/\n`,
    [join('cgroup', mount, 'tasks')]: '1\n',
  }
  for (const [group, [quota, period]] of Object.entries(quotas)) {
    files[join('cgroup', mount, group, 'cpu.cfs_quota_us')] = `${quota}\n`
    files[join('cgroup', mount, group, 'cpu.cfs_period_us')] = `${period}\n`
  }
  return machine(files)
}

describe('cgroup v2 (cpu.max)', () => {
  it('a quota of 2 CPUs on a 64-CPU host: 2', () => {
    const sources = v2('/kubepods/pod1/c1', { '/kubepods/pod1/c1': '200000 100000\n' })
    expect(readCpuCeiling(sources)).toMatchObject({
      cpus: 2,
      source: 'cgroup-v2',
      affinity: 64,
      quota: 2,
      quotaFile: join(sources.cgroupRoot!, 'kubepods/pod1/c1/cpu.max'),
      detail: 'cgroup v2 cpu.max 200000/100000',
    })
  })

  it('"max": no quota, the affinity', () => {
    const sources = v2('/user.slice/session-1.scope', {
      '/user.slice': 'max 100000\n',
      '/user.slice/session-1.scope': 'max 100000\n',
    })
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({
      cpus: 64,
      source: 'affinity',
      affinity: 64,
      detail: 'CPU affinity; no cgroup CPU quota',
    })
    expect(ceiling.quota).toBeUndefined()
    expect(ceiling.notes).toEqual([])
  })

  it('a tighter parent limits the group: the smallest quota on the way up wins', () => {
    const sources = v2('/a/b/c', {
      '/a': 'max 100000\n',
      '/a/b': '300000 100000\n',
      '/a/b/c': '800000 100000\n',
    })
    expect(readCpuCeiling(sources)).toMatchObject({
      cpus: 3,
      source: 'cgroup-v2',
      quota: 3,
      quotaFile: join(sources.cgroupRoot!, 'a/b/cpu.max'),
    })
  })

  it('a parent looser than the group does not loosen it; periods may differ per level', () => {
    const sources = v2('/a/b', { '/a': '1000000 100000\n', '/a/b': '100000 25000\n' })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 4, quota: 4 })
  })

  it('a group without cpu.max (controller not enabled there) takes its parent’s', () => {
    const sources = v2('/a/b', { '/a': '300000 100000\n' })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 3, source: 'cgroup-v2' })
  })

  it.each([
    ['150000 100000', 1, 1.5, 'cgroup v2 cpu.max 150000/100000 = 1.5 CPUs'],
    ['250000 100000', 2, 2.5, 'cgroup v2 cpu.max 250000/100000 = 2.5 CPUs'],
    ['199999 100000', 1, 1.99999, 'cgroup v2 cpu.max 199999/100000 = 1.999 CPUs'],
    ['50000 100000', 1, 0.5, 'cgroup v2 cpu.max 50000/100000 = 0.5 CPU, at least 1'],
    ['1000 100000', 1, 0.01, 'cgroup v2 cpu.max 1000/100000 = 0.01 CPU, at least 1'],
  ])('fractional quota %s: %i whole CPU(s)', (text, cpus, quota, detail) => {
    const ceiling = readCpuCeiling(v2('/c', { '/c': `${text}\n` }))
    expect(ceiling).toMatchObject({ cpus, source: 'cgroup-v2', detail })
    expect(ceiling.quota).toBeCloseTo(quota, 10)
  })

  it('the namespace root is the container’s own group: cpu.max at the mount', () => {
    // With a cgroup namespace the process sees itself at '/', and the mount is its group.
    const sources = v2('/', { '/': '200000 100000\n' })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 2, source: 'cgroup-v2' })
  })

  it('a path outside the namespace’s view (..) reads the mount, and says so', () => {
    const sources = v2('/../other', { '/': '300000 100000\n' })
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 3 })
    expect(ceiling.notes.join('\n')).toContain('/../other cannot be followed')
  })

  it('hybrid mode with the cpu controller on v2: the unified mount', () => {
    const sources = machine({
      'proc/self/cgroup': '4:memory:/x\n1:name=systemd:/x\n0::/x\n',
      'cgroup/unified/cgroup.controllers': 'cpu\n',
      'cgroup/unified/x/cpu.max': '200000 100000\n',
    })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 2, source: 'cgroup-v2' })
  })
})

describe('cgroup v1 (cpu.cfs_quota_us, cpu.cfs_period_us)', () => {
  it('a quota of 2 CPUs: 2', () => {
    const sources = v1('/docker/abc', { '/docker/abc': ['200000', '100000'] })
    expect(readCpuCeiling(sources)).toMatchObject({
      cpus: 2,
      source: 'cgroup-v1',
      quota: 2,
      quotaFile: join(sources.cgroupRoot!, 'cpu,cpuacct/docker/abc/cpu.cfs_quota_us'),
      detail: 'cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 200000/100000',
    })
  })

  it('-1: no quota, the affinity', () => {
    const sources = v1('/docker/abc', {
      '/': ['-1', '100000'],
      '/docker/abc': ['-1', '100000'],
    })
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.quota).toBeUndefined()
    expect(ceiling.notes).toEqual([])
  })

  it('a parent’s quota limits the group', () => {
    const sources = v1('/a/b', { '/a': ['150000', '100000'], '/a/b': ['-1', '100000'] })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 1, quota: 1.5, source: 'cgroup-v1' })
  })

  it.each([
    ['cpu,cpuacct', 'cpu,cpuacct'],
    ['cpu,cpuacct', 'cpuacct,cpu'],
    ['cpuacct,cpu', 'cpuacct,cpu'],
    ['cpu', 'cpu'],
  ])('controllers %s mounted at %s', (controllers, mount) => {
    const sources = v1('/g', { '/g': ['300000', '100000'] }, { controllers, mount })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 3, source: 'cgroup-v1' })
  })

  it('the combined mount through its per-controller link (cpu → cpu,cpuacct)', () => {
    const sources = v1(
      '/g',
      { '/g': ['250000', '100000'] },
      { controllers: 'cpu', mount: 'cpu,cpuacct' },
    )
    symlinkSync('cpu,cpuacct', join(sources.cgroupRoot!, 'cpu'))
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 2, quota: 2.5, source: 'cgroup-v1' })
  })

  it('the container sees its own group as the mount (no cgroup namespace): reads the mount', () => {
    // /proc/self/cgroup names the host's path; inside, only the container's group is mounted.
    const sources = v1('/kubepods/burstable/pod1/abc', { '/': ['200000', '100000'] })
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 2, source: 'cgroup-v1' })
    expect(ceiling.notes.join('\n')).toMatch(/kubepods\/burstable\/pod1\/abc is not visible/)
  })

  it('a partly visible path: the deepest visible suffix, and its parents', () => {
    const sources = v1('/kubepods/pod1/abc', {
      '/': ['400000', '100000'],
      '/abc': ['300000', '100000'],
    })
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 3, quota: 3 })
  })

  it('hybrid mode: v1 holds the cpu controller, the unified v2 mount beside it is not read', () => {
    const sources = v1('/g', { '/g': ['200000', '100000'] })
    writeFileSync(join(sources.cgroupRoot!, 'cgroup.controllers'), '\n')
    mkdirSync(join(sources.cgroupRoot!, 'g'))
    writeFileSync(join(sources.cgroupRoot!, 'g', 'cpu.max'), '100000 100000\n')
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 2, source: 'cgroup-v1' })
  })

  it.each([
    ['50000', '100000', '0.5 CPU, at least 1'],
    ['1000', '100000', '0.01 CPU, at least 1'],
  ])('a quota below one CPU (%s/%s): 1', (quota, period, detail) => {
    const ceiling = readCpuCeiling(v1('/g', { '/g': [quota, period] }))
    expect(ceiling.cpus).toBe(1)
    expect(ceiling.detail).toContain(detail)
  })
})

describe('the minimum with the affinity', () => {
  it('a quota above the affinity: the affinity, with the quota reported', () => {
    const ceiling = readCpuCeiling(v2('/c', { '/c': '800000 100000\n' }, 4))
    expect(ceiling).toMatchObject({
      cpus: 4,
      source: 'affinity',
      affinity: 4,
      quota: 8,
      detail: 'CPU affinity; cgroup v2 cpu.max 800000/100000 allows more',
    })
  })

  it('a quota equal to the affinity is named as the source', () => {
    const ceiling = readCpuCeiling(v2('/c', { '/c': '400000 100000\n' }, 4))
    expect(ceiling).toMatchObject({ cpus: 4, source: 'cgroup-v2', affinity: 4 })
  })

  it('a fractional quota is floored before the minimum: 4.5 CPUs on 4 → 4 (quota), on 5 → 4', () => {
    expect(readCpuCeiling(v2('/c', { '/c': '450000 100000\n' }, 4))).toMatchObject({
      cpus: 4,
      source: 'cgroup-v2',
    })
    expect(readCpuCeiling(v2('/c', { '/c': '450000 100000\n' }, 5))).toMatchObject({
      cpus: 4,
      source: 'cgroup-v2',
    })
  })

  it('the affinity mask counts online CPUs only (a VM’s mask may name absent ones)', () => {
    const sources = v2('/c', { '/c': 'max 100000\n' })
    writeFileSync(sources.procSelfStatus!, 'Cpus_allowed_list:\t0-127\n')
    writeFileSync(sources.cpuOnline!, '0-1\n')
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 2, affinity: 2 })
  })

  it('taskset-style masks: 0,2-3,8-9 of 0-15 → 5; of online 0-3,9 → 4', () => {
    const sources = v2('/c', {})
    writeFileSync(sources.procSelfStatus!, 'Cpus_allowed_list:\t0,2-3,8-9\n')
    writeFileSync(sources.cpuOnline!, '0-15\n')
    expect(readCpuCeiling(sources).cpus).toBe(5)
    writeFileSync(sources.cpuOnline!, '0-3,9\n')
    expect(readCpuCeiling(sources).cpus).toBe(4)
  })

  it('the online list unreadable: the mask alone', () => {
    const sources = v2('/c', {}, 6)
    rmSync(sources.cpuOnline!)
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({
      cpus: 6,
      affinity: 6,
      detail: 'CPU affinity; no cgroup CPU quota',
    })
    expect(ceiling.notes.join('\n')).toContain('ENOENT')
  })

  it('the mask unreadable or garbage: os.availableParallelism(), still capped by the quota', () => {
    const sources = v2('/c', { '/c': '300000 100000\n' })
    rmSync(sources.procSelfStatus!)
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 3, affinity: NODE_SAYS })
    writeFileSync(sources.procSelfStatus!, 'Cpus_allowed_list:\tlots\n')
    const garbage = readCpuCeiling(sources)
    expect(garbage).toMatchObject({ cpus: 3, affinity: NODE_SAYS })
    expect(garbage.notes.join('\n')).toContain('no readable Cpus_allowed_list')
    writeFileSync(sources.cpuOnline!, '4-7\n') // no allowed CPU online
    writeFileSync(sources.procSelfStatus!, 'Cpus_allowed_list:\t0-3\n')
    expect(readCpuCeiling(sources)).toMatchObject({ cpus: 3, affinity: NODE_SAYS })
  })

  it('not Linux: os.availableParallelism(), no cgroup files read', () => {
    const sources = v2('/c', { '/c': '100000 100000\n' })
    const ceiling = readCpuCeiling({ ...sources, platform: 'darwin' })
    expect(ceiling).toMatchObject({
      cpus: NODE_SAYS,
      source: 'affinity',
      detail: 'os.availableParallelism(); no cgroup CPU quota',
    })
  })

  it('a stub availableParallelism() of 0 or NaN, or one that throws, still gives 1', () => {
    for (const n of [0, Number.NaN, -3]) {
      const ceiling = readCpuCeiling({ platform: 'darwin', availableParallelism: () => n })
      expect(ceiling.cpus).toBe(1)
    }
    const throws = () => {
      throw new Error('no')
    }
    const ceiling = readCpuCeiling({ platform: 'darwin', availableParallelism: throws })
    expect(ceiling).toMatchObject({ cpus: 1, notes: ['os.availableParallelism(): no'] })
  })
})

describe('missing and garbage files fall back to the affinity, saying why', () => {
  it('no /proc/self/cgroup', () => {
    const sources = machine({})
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes).toEqual([`${sources.procSelfCgroup}: ENOENT`])
  })

  it.each([
    ['empty', ''],
    ['text', 'hello world\n'],
    ['no path', '0::\n'],
    ['binary', '\u0000\u0001\u0002'],
  ])('/proc/self/cgroup: %s', (_, text) => {
    const ceiling = readCpuCeiling(machine({ 'proc/self/cgroup': text }))
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toContain('no cgroup line')
  })

  it('/proc/self/cgroup without a cpu controller or a v2 line', () => {
    const ceiling = readCpuCeiling(machine({ 'proc/self/cgroup': '3:memory:/x\n' }))
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toContain('no cgroup v1 cpu controller and no cgroup v2 line')
  })

  it.each([
    ['a word', 'lots\n'],
    ['one number', '200000\n'],
    ['max without a period', 'max\n'],
    ['a zero period', '200000 0\n'],
    ['a zero quota', '0 100000\n'],
    ['a negative quota', '-1 100000\n'],
    ['a decimal', '1.5 1\n'],
    ['three fields', '200000 100000 5\n'],
    ['past 2^53', '99999999999999999999 100000\n'],
  ])('cpu.max holding %s', (_, text) => {
    const ceiling = readCpuCeiling(v2('/c', { '/c': text }))
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toContain(`cpu.max: not "max PERIOD" or "QUOTA PERIOD"`)
  })

  it('garbage at one level does not hide a quota at another', () => {
    const sources = v2('/a/b', { '/a': '200000 100000\n', '/a/b': 'garbage\n' })
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 2, source: 'cgroup-v2' })
    expect(ceiling.notes).toHaveLength(1)
  })

  it('an unreadable cpu.max (a directory: EISDIR) is skipped and noted', () => {
    const sources = v2('/c', {})
    mkdirSync(join(sources.cgroupRoot!, 'c', 'cpu.max'))
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toMatch(/cpu\.max: EISDIR/)
  })

  it.each([
    ['a word quota', 'abc', '100000', 'cpu.cfs_quota_us: not -1 or a number'],
    ['-2', '-2', '100000', 'cpu.cfs_quota_us: not -1 or a number'],
    ['a zero period', '200000', '0', 'cpu.cfs_period_us: not a number'],
    ['an empty period', '200000', '', 'cpu.cfs_period_us: not a number'],
  ])('v1 with %s', (_, quota, period, note) => {
    const ceiling = readCpuCeiling(v1('/g', { '/g': [quota, period] }))
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toContain(note)
  })

  it('v1 quota without its period file', () => {
    const sources = v1('/g', { '/g': ['200000', '100000'] })
    rmSync(join(sources.cgroupRoot!, 'cpu,cpuacct/g/cpu.cfs_period_us'))
    const ceiling = readCpuCeiling(sources)
    expect(ceiling).toMatchObject({ cpus: 64, source: 'affinity' })
    expect(ceiling.notes.join('\n')).toContain('cpu.cfs_period_us: ENOENT')
  })

  it('no cgroup mount where /proc/self/cgroup says (v1, v2)', () => {
    const noV1 = machine({ 'proc/self/cgroup': '4:cpu,cpuacct:/g\n' })
    expect(readCpuCeiling(noV1).notes.join('\n')).toContain('no cgroup v1 cpu mount')
    const noV2 = machine({ 'proc/self/cgroup': '0::/g\n' })
    expect(readCpuCeiling(noV2).notes.join('\n')).toContain('no cgroup v2 mount')
    expect(readCpuCeiling(noV2)).toMatchObject({ cpus: 64, source: 'affinity' })
  })

  it('never throws, whatever the paths are', () => {
    const file = machine({}).procSelfStatus!
    for (const sources of [
      { cgroupRoot: file, procSelfCgroup: file, procSelfStatus: file, cpuOnline: file },
      { cgroupRoot: '\u0000', procSelfCgroup: '\u0000', procSelfStatus: '', cpuOnline: '' },
      { procSelfCgroup: dirname(file), procSelfStatus: dirname(file) },
    ]) {
      const ceiling = readCpuCeiling({
        ...sources,
        platform: 'linux',
        availableParallelism: () => 3,
      })
      expect(ceiling.cpus).toBeGreaterThanOrEqual(1)
      expect(ceiling.source).toBe('affinity')
    }
  })

  it('the result is frozen', () => {
    const ceiling = readCpuCeiling(v2('/c', { '/c': '200000 100000\n' }))
    expect(Object.isFrozen(ceiling)).toBe(true)
    expect(Object.isFrozen(ceiling.notes)).toBe(true)
  })
})

describe('parseCpuList', () => {
  it.each<[string, [number, number][]]>([
    ['0', [[0, 0]]],
    ['0-3', [[0, 3]]],
    [
      '0-3,8,10-11',
      [
        [0, 3],
        [8, 8],
        [10, 11],
      ],
    ],
    [
      '8-9,0-1',
      [
        [0, 1],
        [8, 9],
      ],
    ],
    ['0-3,2-5,6', [[0, 6]]],
  ])('%s', (text, ranges) => {
    expect(parseCpuList(text)).toEqual(ranges)
  })

  it.each(['', ' ', 'a', '3-1', '0-', '-1', '0,,1', '0-3 ', '0-99999999', '1:2'])(
    'refuses %o',
    (text) => {
      expect(parseCpuList(text)).toBeUndefined()
    },
  )
})

describe('on this machine', () => {
  it('a sane number, read once and cached', () => {
    const ceiling = cpuCeiling()
    expect(Number.isInteger(ceiling.cpus)).toBe(true)
    expect(ceiling.cpus).toBeGreaterThanOrEqual(1)
    expect(ceiling.cpus).toBeLessThanOrEqual(ceiling.affinity)
    if (cpus().length > 0) expect(ceiling.cpus).toBeLessThanOrEqual(cpus().length)
    // Before libuv 1.49 (Node 20: 1.46) availableParallelism() is the affinity alone, so it
    // bounds ours; later versions fold in the quota, their own way (see cpu-ceiling.ts).
    const [major, minor] = process.versions.uv.split('.').map(Number)
    if (major === 1 && minor < 49) {
      expect(ceiling.affinity).toBe(availableParallelism())
      expect(ceiling.cpus).toBeLessThanOrEqual(availableParallelism())
    }
    expect(cpuCeiling()).toBe(ceiling)
    const fresh = cpuCeiling(true)
    expect(fresh).not.toBe(ceiling)
    expect(fresh).toEqual(ceiling)
    expect(cpuCeiling()).toBe(fresh)
  })
})
