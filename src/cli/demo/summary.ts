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
  console.table(
    rows.map(([m, ratio]) => ({
      path: m.name,
      threads: m.threads,
      messages: m.messages,
      'msg/s': rate(m.msgPerS),
      'latency p50': ms(m.p50Ms),
      'latency p99': ms(m.p99Ms),
      'conveyor is': ratio,
    })),
  )
  const c = s.conveyor
  console.log(
    `conveyor: ${c.messages} completed, ${c.failed} handler errors, ${c.deadLettered} dead-lettered, ${c.unprocessed} handed back unprocessed by stop().`,
  )
  console.log(
    'Latency: conveyor push → done (includes time queued in the lanes); the others: one call.',
  )
}
