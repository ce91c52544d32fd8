import cliProgress from 'cli-progress'
import type { QueueStats } from '../../queue/index.js'

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)

/**
 * Live progress: a bar on a terminal; on a pipe or file, one plain line every few seconds.
 */
export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined
  private lastPlain = 0

  constructor(
    private readonly verbose: boolean,
    private readonly durationS: number,
  ) {
    if (verbose && process.stdout.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format:
            '{bar} {value}/{total}s | {done} done | {rate} msg/s | backlog {backlog} | {threads} threads | busy {busy}',
          barsize: 20,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
      this.bar.start(durationS, 0, this.fields(undefined))
    }
  }

  update(stats: QueueStats, elapsedMs: number): void {
    if (!this.verbose) return
    if (this.bar) {
      this.bar.update(Math.min(this.durationS, Math.floor(elapsedMs / 1000)), this.fields(stats))
      return
    }
    if (elapsedMs - this.lastPlain >= 5000) {
      this.lastPlain = elapsedMs
      const f = this.fields(stats)
      console.log(
        `${(elapsedMs / 1000).toFixed(0)}s: ${f.done} done, ${f.rate} msg/s, backlog ${f.backlog}, ${f.threads} threads, busy ${f.busy}`,
      )
    }
  }

  finish(stats: QueueStats): void {
    if (!this.bar) return
    this.bar.update(this.durationS, this.fields(stats))
    this.bar.stop()
  }

  private fields(stats: QueueStats | undefined) {
    return {
      done: fmt(stats?.completed ?? 0),
      rate: fmt(stats?.rate.recent ?? 0),
      backlog: `${Math.round((stats?.backlogBytes ?? 0) / 1024)} KiB`,
      threads: stats?.threads ?? 0,
      busy: stats ? stats.lanes.map((l) => `${Math.round(l.busy * 100)}%`).join(' ') : '-',
    }
  }
}
