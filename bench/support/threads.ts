import { availableParallelism } from 'node:os'

/**
 * Thread counts a suite sweeps: 1 … cores, every count up to 8; past that, doubling (and the
 * core count itself), so a big machine's run stays minutes long.
 */
export function threadCounts(cores = availableParallelism()): number[] {
  const out: number[] = []
  for (let t = 1; t <= Math.min(cores, 8); t++) out.push(t)
  for (let t = 16; t < cores; t *= 2) out.push(t)
  if (cores > 8) out.push(cores)
  return out
}

/** The --quick subset: 1, 2 and the core count. */
export function quickThreadCounts(cores = availableParallelism()): number[] {
  return [...new Set([1, Math.min(2, cores), cores])]
}
