import { formatBytes, formatRate, percent, type Recommendation } from '../../tune/recommend.js'
import type { ConfigurationResult } from './sweep.js'

/** Text for the terminal: the table, a bar chart of throughput, the recommendation. */

const ms = (n: number) => (n < 1 ? `${(n * 1000).toFixed(0)} µs` : `${n.toFixed(2)} ms`)

const isRecommended = (c: ConfigurationResult, r: Recommendation | null) =>
  r !== null && c.threads === r.threads && c.laneBytes === r.laneBytes

/** Rows in sweep order (lane size, then threads); medians across repeats. */
export function table(configs: readonly ConfigurationResult[], r: Recommendation | null): string {
  const best = Math.max(...configs.map((c) => c.throughput))
  const rows = [
    [
      'threads',
      'lane',
      'msg/s',
      'of best',
      'spread',
      'service p50',
      'p99',
      'push→done p50',
      'p99',
      'main thread',
      'failed',
      '',
    ],
    ...configs.map((c) => {
      // No timed message in any window (nothing finished): no percentiles, not zeros.
      const t = (n: number) => (c.samples > 0 ? ms(n) : '-')
      return [
        String(c.threads),
        formatBytes(c.laneBytes),
        formatRate(c.throughput),
        best > 0 ? percent(c.throughput / best) : '-',
        spread(c.throughputs),
        t(c.serviceMs.p50),
        t(c.serviceMs.p99),
        t(c.latencyMs.p50),
        t(c.latencyMs.p99),
        percent(c.mainThreadUtilisation),
        String(c.failed),
        isRecommended(c, r) ? '◀ recommended' : '',
      ]
    }),
  ]
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)))
  const line = (row: string[]) =>
    row
      .map((cell, col) => (col === row.length - 1 ? cell : cell.padStart(widths[col])))
      .join('  ')
      .trimEnd()
  return [line(rows[0]), line(widths.map((w) => '-'.repeat(w))), ...rows.slice(1).map(line)].join(
    '\n',
  )
}

/** ±x %: half the range of the repeats' throughputs around their median, a noise gauge. */
function spread(values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted[sorted.length >> 1]
  if (!(mid > 0)) return '-'
  return `±${percent((sorted[sorted.length - 1] - sorted[0]) / 2 / mid)}`
}

const BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉']

/** A horizontal bar per configuration, scaled to the best, in eighths of a character. */
export function barChart(
  configs: readonly ConfigurationResult[],
  r: Recommendation | null,
  width = 40,
): string {
  const best = Math.max(...configs.map((c) => c.throughput))
  const labels = configs.map((c) => `${c.threads} × ${formatBytes(c.laneBytes)}`)
  const labelWidth = Math.max(...labels.map((l) => l.length))
  return configs
    .map((c, i) => {
      const eighths = best > 0 ? Math.round((c.throughput / best) * width * 8) : 0
      const bar = '█'.repeat(eighths >> 3) + BLOCKS[eighths & 7]
      const mark = isRecommended(c, r) ? '  ◀' : ''
      return `${labels[i].padStart(labelWidth)} │${bar.padEnd(width)} ${formatRate(c.throughput)} msg/s${mark}`
    })
    .join('\n')
}
