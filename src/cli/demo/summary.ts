import type { DemoSummary, Measurement } from './demo.js'

const rate = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0)
const ms = (n: number) => (n < 1 ? `${(n * 1000).toFixed(0)} µs` : `${n.toFixed(2)} ms`)

/** The table printed at the end of `conveyor demo`. */
export function printSummary(s: DemoSummary): void {
  const rows: [Measurement, string][] = [
    [s.conveyor, '1.00×'],
    [s.piscina, `${(s.conveyor.msgPerS / s.piscina.msgPerS).toFixed(2)}×`],
    [s.inline, `${(s.conveyor.msgPerS / s.inline.msgPerS).toFixed(2)}×`],
  ]
  console.log(`\nSummary — ${s.handler}, ${s.threads} threads`)
  const table = [
    ['path', 'threads', 'messages', 'msg/s', 'latency p50', 'latency p99', 'conveyor is'],
    ...rows.map(([m, ratio]) => [
      m.name,
      String(m.threads),
      String(m.messages),
      rate(m.msgPerS),
      ms(m.p50Ms),
      ms(m.p99Ms),
      ratio,
    ]),
  ]
  const widths = table[0].map((_, col) => Math.max(...table.map((row) => row[col].length)))
  const line = (row: string[]) =>
    row
      .map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])))
      .join('  ')
  console.log(line(table[0]))
  console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  for (const row of table.slice(1)) console.log(line(row))
  const c = s.conveyor
  console.log(
    `conveyor: ${c.messages} completed, ${c.failed} handler errors, ${c.deadLettered} dead-lettered, ${c.unprocessed} handed back unprocessed by stop().`,
  )
  console.log(
    'Latency: conveyor push → done (includes time queued in the lanes); the others: one call.',
  )
}
