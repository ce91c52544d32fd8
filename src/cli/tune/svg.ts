import { formatBytes, formatRate, type Recommendation } from '../../tune/recommend.js'
import type { ConfigurationResult } from './sweep.js'

/**
 * The sweep as a standalone SVG: throughput (median, msg/s) against thread count, one line per
 * lane size, each repeat as a faint dot (the noise), the recommendation ringed. Written by hand:
 * the package may depend only on its runtime dependencies, and a line chart is a few elements.
 */

const W = 640
const H = 400
const M = { left: 72, right: 150, top: 40, bottom: 48 }
const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b']

export function svgChart(
  configs: readonly ConfigurationResult[],
  r: Recommendation | null,
  title = 'conveyor tune: throughput by thread count',
): string {
  const threads = [...new Set(configs.map((c) => c.threads))].sort((a, b) => a - b)
  const lanes = [...new Set(configs.map((c) => c.laneBytes))].sort((a, b) => a - b)
  const yMax = niceCeil(Math.max(1, ...configs.flatMap((c) => [c.throughput, ...c.throughputs])))
  const plotW = W - M.left - M.right
  const plotH = H - M.top - M.bottom
  // Thread counts sit at even steps (1, 2, 4, 8 would crowd on a linear axis).
  const x = (t: number) =>
    M.left +
    (threads.length === 1 ? plotW / 2 : (threads.indexOf(t) / (threads.length - 1)) * plotW)
  const y = (v: number) => M.top + plotH - (v / yMax) * plotH
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${M.left}" y="22" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
  ]
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4
    out.push(
      `<line x1="${M.left}" x2="${M.left + plotW}" y1="${f(y(v))}" y2="${f(y(v))}" stroke="#ddd"/>`,
      `<text x="${M.left - 6}" y="${f(y(v) + 4)}" text-anchor="end">${formatRate(v)}</text>`,
    )
  }
  for (const t of threads) {
    out.push(`<text x="${f(x(t))}" y="${M.top + plotH + 18}" text-anchor="middle">${t}</text>`)
  }
  out.push(
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${M.top + plotH}" stroke="#333"/>`,
    `<line x1="${M.left}" x2="${M.left + plotW}" y1="${M.top + plotH}" y2="${M.top + plotH}" stroke="#333"/>`,
    `<text x="${M.left + plotW / 2}" y="${H - 10}" text-anchor="middle">worker threads</text>`,
    `<text transform="translate(16 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">messages / s (median)</text>`,
  )
  lanes.forEach((lane, i) => {
    const colour = COLOURS[i % COLOURS.length]
    const series = configs.filter((c) => c.laneBytes === lane).sort((a, b) => a.threads - b.threads)
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-width="2" points="${series.map((c) => `${f(x(c.threads))},${f(y(c.throughput))}`).join(' ')}"/>`,
    )
    for (const c of series) {
      for (const v of c.throughputs) {
        out.push(
          `<circle cx="${f(x(c.threads))}" cy="${f(y(v))}" r="2" fill="${colour}" opacity="0.35"/>`,
        )
      }
      out.push(
        `<circle cx="${f(x(c.threads))}" cy="${f(y(c.throughput))}" r="4" fill="${colour}"><title>${c.threads} threads, ${formatBytes(lane)} lanes: ${formatRate(c.throughput)} msg/s</title></circle>`,
      )
    }
    const ly = M.top + 10 + i * 18
    out.push(
      `<line x1="${W - M.right + 16}" x2="${W - M.right + 36}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`,
      `<text x="${W - M.right + 42}" y="${ly + 4}">${formatBytes(lane)} lanes</text>`,
    )
  })
  if (r) {
    out.push(
      `<circle cx="${f(x(r.threads))}" cy="${f(y(r.throughput))}" r="9" fill="none" stroke="#000" stroke-width="1.5"><title>${escapeXml(r.reason)}</title></circle>`,
      `<text x="${W - M.right + 16}" y="${M.top + 10 + lanes.length * 18 + 8}">◯ recommended</text>`,
    )
  }
  out.push('</svg>', '')
  return out.join('\n')
}

/** 1.0, 2, 2.5 or 5 × a power of ten, at or above v. */
function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v))
  return ([1, 2, 2.5, 5, 10].find((m) => m * p >= v) ?? 10) * p
}

const f = (n: number) => n.toFixed(1)

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
