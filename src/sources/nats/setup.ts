import type { ConsumerConfig, ConsumerInfo, JetStreamManager, StreamInfo } from '@nats-io/jetstream'
import { invalid } from '../../check-options.js'
import type { JetStreamModule } from './client.js'
import { LABEL, type ResolvedNatsOptions } from './options.js'
import { subjectMatches } from './subjects.js'

/** What pulling needs to know of the consumer, once it is checked. */
export interface ConsumerLimits {
  /** The consumer's max_batch (Infinity when unset). */
  maxBatch: number
  /** The consumer's max_expires in ms (Infinity when unset). */
  maxExpiresMs: number
}

const NS_PER_MS = 1_000_000

function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' ? code : undefined
}

/** A JetStream API error as its message and err_code ("stream not found, 10059"). */
function describeApiError(err: unknown): string {
  return `${(err as Error).message}, ${apiCode(err)}`
}

/**
 * Checks (or, with createConsumer, creates) what the source pulls from and dead-letters to:
 * the stream exists; the consumer is a durable pull consumer with explicit acks, an ack_wait of
 * at least ackWaitMs and a max_deliver that lets the source dead-letter first; a stream stores
 * deadLetterSubject, and the consumer does not receive it (dead letters would loop back).
 * Throws INVALID_OPTION naming what to change.
 */
export async function prepareConsumer(
  js: JetStreamModule,
  jsm: JetStreamManager,
  options: ResolvedNatsOptions,
): Promise<ConsumerLimits> {
  const { stream, consumer } = options
  let streamInfo: StreamInfo
  try {
    streamInfo = await jsm.streams.info(stream)
  } catch (err) {
    if (apiCode(err) !== js.JetStreamApiCodes.StreamNotFound) throw err
    throw invalid(
      LABEL,
      `stream '${stream}' does not exist (JetStream: ${describeApiError(err)}): create it first (the source never does)`,
    )
  }
  let info = await consumerInfo(js, jsm, stream, consumer)
  if (options.createConsumer) info = await ensureConsumer(js, jsm, options, info)
  else if (!info) {
    throw invalid(
      LABEL,
      `consumer '${consumer}' does not exist on stream '${stream}' (JetStream: consumer not found, ${js.JetStreamApiCodes.ConsumerNotFound}): create it (a durable pull consumer, ack_policy explicit) or pass createConsumer: true`,
    )
  }
  checkConsumer(info.config, options)
  await checkDeadLetters(jsm, options, streamInfo, info)
  const { max_batch, max_expires } = info.config
  return {
    maxBatch: max_batch && max_batch > 0 ? max_batch : Number.POSITIVE_INFINITY,
    maxExpiresMs:
      max_expires && max_expires > 0 ? max_expires / NS_PER_MS : Number.POSITIVE_INFINITY,
  }
}

async function consumerInfo(
  js: JetStreamModule,
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, consumer)
  } catch (err) {
    if (apiCode(err) === js.JetStreamApiCodes.ConsumerNotFound) return undefined
    throw err
  }
}

async function ensureConsumer(
  js: JetStreamModule,
  jsm: JetStreamManager,
  options: ResolvedNatsOptions,
  existing: ConsumerInfo | undefined,
): Promise<ConsumerInfo> {
  const { stream, consumer, filterSubject } = options
  const ackWait = options.ackWaitMs * NS_PER_MS
  if (!existing) {
    try {
      return await jsm.consumers.add(stream, {
        durable_name: consumer,
        ack_policy: js.AckPolicy.Explicit,
        deliver_policy: js.DeliverPolicy.All,
        ack_wait: ackWait,
        // The source dead-letters after maxDeliveries; a server-side limit would only leave a
        // message stuck in the stream, undelivered and never dead-lettered.
        max_deliver: -1,
        ...(filterSubject ? { filter_subject: filterSubject } : {}),
      })
    } catch (err) {
      // Another process created it meanwhile: look at theirs.
      const theirs = await consumerInfo(js, jsm, stream, consumer)
      if (!theirs) throw err
      existing = theirs
    }
  }
  const config = existing.config
  checkPull(config, options)
  const update: Partial<ConsumerConfig> = {}
  if (config.ack_wait !== ackWait) update.ack_wait = ackWait
  if (config.max_deliver !== undefined && config.max_deliver > 0) update.max_deliver = -1
  if (filterSubject && (config.filter_subject ?? '') !== filterSubject) {
    update.filter_subject = filterSubject
  }
  if (Object.keys(update).length === 0) return existing
  return await jsm.consumers.update(stream, consumer, update)
}

function checkPull(config: ConsumerConfig, options: ResolvedNatsOptions): void {
  const what = `consumer '${options.consumer}' on stream '${options.stream}'`
  if (config.deliver_subject) {
    throw invalid(LABEL, `${what} is a push consumer: the source needs a pull consumer`)
  }
  if (config.ack_policy !== 'explicit') {
    throw invalid(
      LABEL,
      `${what} has ack_policy '${config.ack_policy}': the source acks each message after its handler, and needs ack_policy 'explicit'`,
    )
  }
}

function checkConsumer(config: ConsumerConfig, options: ResolvedNatsOptions): void {
  checkPull(config, options)
  const what = `consumer '${options.consumer}' on stream '${options.stream}'`
  const ackWaitMs = (config.ack_wait ?? 30_000 * NS_PER_MS) / NS_PER_MS
  if (ackWaitMs < options.ackWaitMs) {
    throw invalid(
      LABEL,
      `${what} has ack_wait ${ackWaitMs} ms, below ackWaitMs ${options.ackWaitMs}: leases every ackWaitMs / 3 would come too late; pass ackWaitMs: ${ackWaitMs} (or createConsumer: true)`,
    )
  }
  const maxDeliver = config.max_deliver ?? -1
  if (maxDeliver > 0 && maxDeliver <= options.maxDeliveries) {
    throw invalid(
      LABEL,
      `${what} has max_deliver ${maxDeliver}, not above maxDeliveries ${options.maxDeliveries}: JetStream would stop delivering a failing message before the source dead-letters it; set max_deliver to -1 (or createConsumer: true)`,
    )
  }
}

/** The filters a consumer receives: its own, or (without) every subject of its stream. */
function consumerFilters(info: ConsumerInfo): string[] {
  const { filter_subjects, filter_subject } = info.config
  if (filter_subjects && filter_subjects.length > 0) return filter_subjects
  if (filter_subject) return [filter_subject]
  return ['>']
}

async function checkDeadLetters(
  jsm: JetStreamManager,
  options: ResolvedNatsOptions,
  streamInfo: StreamInfo,
  info: ConsumerInfo,
): Promise<void> {
  const { deadLetterSubject, stream } = options
  const owners: string[] = []
  for await (const name of jsm.streams.names(deadLetterSubject)) owners.push(name)
  if (owners.length === 0) {
    if (!options.createConsumer) {
      throw invalid(
        LABEL,
        `no stream stores deadLetterSubject '${deadLetterSubject}': create one (e.g. nats stream add ${stream}_DEAD --subjects '${deadLetterSubject}'), or pass createConsumer: true`,
      )
    }
    try {
      await jsm.streams.add({ name: `${stream}_DEAD`, subjects: [deadLetterSubject] })
    } catch (err) {
      // Another process created it meanwhile.
      const again: string[] = []
      for await (const name of jsm.streams.names(deadLetterSubject)) again.push(name)
      if (again.length === 0) throw err
    }
    return
  }
  const inSource = owners.includes(stream)
  const stored = (streamInfo.config.subjects ?? []).some((s) =>
    subjectMatches(s, deadLetterSubject),
  )
  if (
    (inSource || stored) &&
    consumerFilters(info).some((f) => subjectMatches(f, deadLetterSubject))
  ) {
    throw invalid(
      LABEL,
      `deadLetterSubject '${deadLetterSubject}' is stored in stream '${stream}' and consumer '${options.consumer}' receives it: dead letters would come back to it as messages. Use a subject outside its filter, or give the consumer a filterSubject that leaves it out`,
    )
  }
}
