import { Counter, Gauge, Histogram, type Registry, register } from 'prom-client'
import type { MessageSample, SampleObserver } from '../queue/metrics.js'
import type { LaneStats, QueueStats } from '../queue/stats.js'
import {
  invalid,
  type PrometheusOptions,
  type ResolvedPrometheusOptions,
  resolvePrometheusOptions,
} from './options.js'

/** What the adapter needs of a queue: any `Queue<In, Out>` is one. */
export interface MeasuredQueue {
  stats(): QueueStats
  onSample(observer: SampleObserver): () => void
}

export interface QueueMetricsRegistration {
  /** The names of the metrics registered, prefix included. */
  readonly names: readonly string[]
  /** Removes the metrics from the registry and stops observing the queue. Idempotent. */
  unregister(): void
}

type Labels = Record<string, string>

/** A total the queue keeps (queue.stats()), read at each scrape. */
interface Total {
  name: string
  help: string
  read(stats: QueueStats): number
}

const TOTALS: readonly Total[] = [
  {
    name: 'messages_pushed_total',
    help: 'Messages accepted by push(), pushMany(), run() and consume().',
    read: (s) => s.pushed,
  },
  {
    name: 'messages_completed_total',
    help: 'Messages whose handler returned.',
    read: (s) => s.completed,
  },
  {
    name: 'handler_failures_total',
    help: 'Handler attempts that threw, every attempt of every message.',
    read: (s) => s.failed,
  },
  {
    name: 'messages_dead_lettered_total',
    help: 'Pushed messages given up on: their last attempt threw, or workers kept dying on them.',
    read: (s) => s.deadLettered,
  },
  {
    name: 'messages_rejected_total',
    help: "run() calls rejected with the handler's error.",
    read: (s) => s.rejected,
  },
  {
    name: 'messages_aborted_total',
    help: 'Messages skipped, or given up, because the signal of their push(), pushMany() or run() fired.',
    read: (s) => s.aborted,
  },
]

/** A level the queue has now, read at each scrape. */
const LEVELS: readonly Total[] = [
  {
    name: 'messages_in_flight',
    help: 'Messages written to lanes and not yet settled.',
    read: (s) => s.inFlight,
  },
  {
    name: 'pushes_waiting',
    help: 'push() calls waiting for room in a lane.',
    read: (s) => s.waiting,
  },
  {
    name: 'backlog_bytes',
    help: 'Ring bytes written to lanes and not yet released by their workers.',
    read: (s) => s.backlogBytes,
  },
  { name: 'threads', help: 'Worker threads (lanes) serving the queue.', read: (s) => s.threads },
]

/** Per lane, labelled `lane`. */
interface PerLane {
  name: string
  help: string
  read(lane: LaneStats): number
}

const LANE_TOTALS: readonly PerLane[] = [
  {
    name: 'lane_busy_seconds_total',
    help: "Seconds the lane's worker spent handling messages (rate() of it: the lane's load).",
    read: (l) => l.busyMs / 1000,
  },
]

const LANE_LEVELS: readonly PerLane[] = [
  {
    name: 'lane_busy_ratio',
    help: "Share of wall time the lane's worker spent handling messages since the queue started.",
    read: (l) => l.busy,
  },
]

/** Sampled timings, one message in 16 per lane (queue.metrics()). */
const TIMINGS: readonly { name: string; help: string; read(s: MessageSample): number }[] = [
  {
    name: 'latency_seconds',
    help: 'push → done of sampled messages: from entering a lane to being seen finished.',
    read: (s) => s.latencyMs / 1000,
  },
  {
    name: 'queue_wait_seconds',
    help: 'Queue wait of sampled messages: from entering a lane to their handler starting.',
    read: (s) => s.waitMs / 1000,
  },
  {
    name: 'service_seconds',
    help: 'Service time of sampled messages: their handler, every attempt and backoff included.',
    read: (s) => s.serviceMs / 1000,
  },
]

/** One queue exposed through a metric set, with the label values that tell it apart. */
interface Member {
  queue: MeasuredQueue
  labels: Labels
  /** The labels as a key: two members of a set may not share one. */
  key: string
}

/**
 * The metrics of one prefix in one registry, shared by every queue registered there: each
 * queue is a series of its own, told apart by its labels (`{ queue: 'orders' }`). prom-client
 * allows one metric per name in a registry, so two registrations with one prefix must share.
 */
class MetricSet {
  readonly members = new Set<Member>()
  readonly names: string[]
  private readonly histograms: { histogram: Histogram; read: (s: MessageSample) => number }[]

  constructor(
    private readonly registry: Registry,
    prefix: string,
    readonly labelNames: readonly string[],
    readonly buckets: readonly number[],
  ) {
    const { members } = this
    const registers = [registry]
    const laneLabelNames = [...labelNames, 'lane']
    const laneLabels = (m: Member, lane: LaneStats): Labels => ({
      ...m.labels,
      lane: String(lane.lane),
    })
    this.names = []
    const named = <T extends { name: string }>(m: T): T => {
      this.names.push(prefix + m.name)
      return { ...m, name: prefix + m.name }
    }
    // Each collect() starts with reset(): a queue unregistered, or a lane removed by resize(),
    // then leaves the exposition.
    try {
      for (const m of TOTALS.map(named)) {
        new Counter({
          name: m.name,
          help: m.help,
          labelNames,
          registers,
          // The queue keeps the total: the counter takes its value at each scrape.
          collect() {
            this.reset()
            for (const q of members) this.inc(q.labels, m.read(q.queue.stats()))
          },
        })
      }
      for (const m of LEVELS.map(named)) {
        new Gauge({
          name: m.name,
          help: m.help,
          labelNames,
          registers,
          collect() {
            this.reset()
            for (const q of members) this.set(q.labels, m.read(q.queue.stats()))
          },
        })
      }
      for (const m of LANE_TOTALS.map(named)) {
        new Counter({
          name: m.name,
          help: m.help,
          labelNames: laneLabelNames,
          registers,
          collect() {
            this.reset()
            for (const q of members) {
              for (const lane of q.queue.stats().lanes) this.inc(laneLabels(q, lane), m.read(lane))
            }
          },
        })
      }
      for (const m of LANE_LEVELS.map(named)) {
        new Gauge({
          name: m.name,
          help: m.help,
          labelNames: laneLabelNames,
          registers,
          collect() {
            this.reset()
            for (const q of members) {
              for (const lane of q.queue.stats().lanes) this.set(laneLabels(q, lane), m.read(lane))
            }
          },
        })
      }
      this.histograms = TIMINGS.map(named).map((m) => ({
        histogram: new Histogram({
          name: m.name,
          help: m.help,
          labelNames,
          buckets: [...buckets],
          registers,
        }),
        read: m.read,
      }))
    } catch (err) {
      this.remove()
      throw err
    }
  }

  /** Whether the registry still holds this set's metrics (registry.clear() drops them). */
  get live(): boolean {
    return this.names.every((name) => this.registry.getSingleMetric(name) !== undefined)
  }

  observe(labels: Labels, sample: MessageSample): void {
    for (const { histogram, read } of this.histograms) histogram.observe(labels, read(sample))
  }

  /** Drops a member's histogram series (the other metrics drop it at the next collect). */
  forget(labels: Labels): void {
    for (const { histogram } of this.histograms) histogram.remove(labels)
  }

  remove(): void {
    for (const name of this.names) this.registry.removeSingleMetric(name)
  }
}

/** The sets this module made, per registry and prefix. */
const sets = new WeakMap<Registry, Map<string, MetricSet>>()

/**
 * Exposes a queue to Prometheus through prom-client: counters of its totals, gauges of its
 * levels (per lane where it has them, labelled `lane`), and histograms of its sampled
 * timings (seconds), fed by every sample as it arrives. Totals and levels are read from
 * `queue.stats()` when the registry is scraped, so they cost nothing between scrapes.
 *
 * Several queues may share a registry and prefix when each has its own `labels` values
 * (same label names, same buckets): each is then a series of the same metrics.
 *
 * Throws INVALID_OPTION for a wrong option, for a registry that already has one of these
 * names from elsewhere, or for a second queue with labels or buckets that do not fit.
 */
export function registerQueueMetrics(
  queue: MeasuredQueue,
  options?: PrometheusOptions,
): QueueMetricsRegistration {
  if (
    queue === null ||
    typeof queue !== 'object' ||
    typeof queue.stats !== 'function' ||
    typeof queue.onSample !== 'function'
  ) {
    throw invalid('takes a queue made by createQueue() (with stats() and onSample())')
  }
  const o = resolvePrometheusOptions(options)
  const registry = o.registry ?? register
  const set = metricSetFor(registry, o)
  const member: Member = { queue, labels: o.labels, key: labelKey(o.labels) }
  for (const other of set.members) {
    if (other.key === member.key) {
      throw invalid(
        `another queue is registered with prefix '${o.prefix}' and labels ${member.key}: give each queue its own labels, e.g. { queue: 'orders' }`,
      )
    }
  }
  set.members.add(member)
  const unsubscribe = queue.onSample((sample) => set.observe(member.labels, sample))
  let registered = true
  return {
    names: [...set.names],
    unregister() {
      if (!registered) return
      registered = false
      unsubscribe()
      set.members.delete(member)
      if (set.members.size > 0) {
        set.forget(member.labels)
        return
      }
      set.remove()
      sets.get(registry)?.delete(o.prefix)
    },
  }
}

/** The registry's set for this prefix: the existing one if the options fit it, or a new one. */
function metricSetFor(registry: Registry, o: ResolvedPrometheusOptions): MetricSet {
  let byPrefix = sets.get(registry)
  if (!byPrefix) sets.set(registry, (byPrefix = new Map()))
  const existing = byPrefix.get(o.prefix)
  if (existing?.live) {
    const names = Object.keys(o.labels).sort()
    if (names.join() !== [...existing.labelNames].sort().join()) {
      throw invalid(
        `queues registered with prefix '${o.prefix}' have labels named [${existing.labelNames.join(', ')}]: give this one the same label names, or another prefix`,
      )
    }
    if (o.buckets.join() !== existing.buckets.join()) {
      throw invalid(
        `queues registered with prefix '${o.prefix}' have other buckets: give this one the same buckets (or none, for the defaults), or another prefix`,
      )
    }
    return existing
  }
  // Ours but dropped from the registry (registry.clear()): start over.
  if (existing) byPrefix.delete(o.prefix)
  const names = [...TOTALS, ...LEVELS, ...LANE_TOTALS, ...LANE_LEVELS, ...TIMINGS].map(
    (m) => o.prefix + m.name,
  )
  const taken = names.filter((name) => registry.getSingleMetric(name) !== undefined)
  if (taken.length > 0) {
    throw invalid(
      `the registry already has ${taken.join(', ')} from elsewhere: give this queue another prefix or registry`,
    )
  }
  const set = new MetricSet(registry, o.prefix, Object.keys(o.labels), o.buckets)
  byPrefix.set(o.prefix, set)
  return set
}

/** Label values as a key, whatever the order the object lists them in. */
function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))
}
