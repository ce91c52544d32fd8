import { createHash } from 'node:crypto'
import { deflateRawSync } from 'node:zlib'

/**
 * The demo's workload: order events as a shop's stream would carry them, and the CPU-bound
 * work a consumer does on each (validate, total, fingerprint, compress for archiving).
 */
export interface Order {
  id: number
  ts: string
  customer: { id: string; country: string; email: string }
  currency: string
  items: { sku: string; qty: number; price: number }[]
  note: string
}

const COUNTRIES = ['FR', 'DE', 'US', 'JP', 'BR', 'IN', 'NG', 'CA']
const WORDS = [
  'fast',
  'gift',
  'fragile',
  'express',
  'call',
  'door',
  'left',
  'porch',
  'back',
  'office',
]

/** A deterministic order stream (a linear congruential generator keeps runs comparable). */
export function makeOrder(id: number): Order {
  let seed = (id * 2654435761) >>> 0
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0
    return seed % n
  }
  const items = Array.from({ length: 1 + rand(6) }, () => ({
    sku: `SKU-${(100000 + rand(900000)).toString(36).toUpperCase()}`,
    qty: 1 + rand(5),
    price: (100 + rand(20000)) / 100,
  }))
  return {
    id,
    ts: new Date(1_700_000_000_000 + id * 37).toISOString(),
    customer: {
      id: `c${rand(100000)}`,
      country: COUNTRIES[rand(COUNTRIES.length)],
      email: `user${rand(1e6)}@example.com`,
    },
    currency: 'EUR',
    items,
    note: Array.from({ length: 4 + rand(12) }, () => WORDS[rand(WORDS.length)]).join(' '),
  }
}

export interface OrderResult {
  id: number
  total: number
  digest: string
  archivedBytes: number
}

/** Validates, totals, fingerprints and compresses one order: tens of µs of real work. */
export function processOrder(order: Order): OrderResult {
  if (!Number.isInteger(order.id) || !Array.isArray(order.items) || order.items.length === 0) {
    throw new TypeError(`order ${String(order.id)}: id and items are required`)
  }
  if (!/^[^@\s]+@[^@\s]+$/.test(order.customer.email))
    throw new TypeError(`order ${order.id}: bad email`)
  let total = 0
  for (const item of order.items) {
    if (!(item.qty > 0) || !(item.price >= 0))
      throw new TypeError(`order ${order.id}: bad item ${item.sku}`)
    total += item.qty * item.price
  }
  const canonical = JSON.stringify(order)
  const digest = createHash('sha256').update(canonical).digest('hex')
  const archived = deflateRawSync(canonical, { level: 6 })
  return {
    id: order.id,
    total: Math.round(total * 100) / 100,
    digest,
    archivedBytes: archived.byteLength,
  }
}
