import fc from 'fast-check'
import { describe, it } from 'vitest'
import { createQueue, type Queue, type StopReport } from '../../dist/src/index.js'
import { fixture, sleep } from './helpers.js'

/*
 * Model-based test of the public Queue. Each fast-check run starts a real queue (small lanes,
 * so pushes wait for room and the largest message is a lane's limit), runs a generated list of
 * commands — push (awaited, or fired in bursts), run(), pause/resume, resize, short waits —
 * then always stop(), and compares everything the queue reported with what the messages' plans
 * call for. The plan travels in the message (see test/fixtures/model-handler.mjs); the handler
 * counts calls and records first deliveries in shared memory.
 *
 * Properties, per run:
 *  1. every accepted push ends exactly once: acked, or dead-lettered (event + nack), or returned
 *     by stop() — and the outcome is the one its plan calls for; every run() resolves with the
 *     handler's value or rejects with its error / WORKER_DIED / QUEUE_STOPPED (then it is in
 *     report.unprocessed — the queue both returns it there and rejects the run() — or was
 *     refused and never handled);
 *  2. a push that rejected left nothing behind: no ack, no nack, never handled;
 *  3. report.pushed counts accepted pushes and runs, and completed + deadLettered + rejected +
 *     unprocessed adds up to it;
 *  4. ordering 'key': per key, messages are first handed to the handler in push order, and
 *     acks/nacks fire in push order;
 *  5. handler calls, throws, 'failed' events and worker exits match the plans.
 *
 * CONVEYOR_MODEL_EXCLUDE=flood,pause,resize (or all) leaves out what triggers the defects known
 * on 2026-11-25 ('' floods, a throwing 'pause' listener, stop() while a resize is in flight), to
 * check the test itself or look past one defect. MODEL_RUNS widens a run; MODEL_SEED, MODEL_PATH
 * and MODEL_REPLAY (fast-check's seed, path and the commands' replayPath) replay a failure,
 * though timing makes some failures flaky; MODEL_DEBUG=1 prints a line per run.
 */

const LANE_BYTES = 4096
/** The largest message a lane takes: half the ring less the record header. */
const MAX_PAYLOAD = LANE_BYTES / 2 - 8
const MAX_IDS = 1 << 14
/** Bound on anything awaited in a run: a hang fails instead of hanging. */
const GUARD_MS = 30_000
/** After stop() returned, every push / run promise must already be settled (give it this). */
const AFTER_STOP_MS = 1_000
/** A stop() timeout no run's work comes near: stop() must drain every lane within it. */
const LONG_STOP_MS = 10_000
/** CONVEYOR_MODEL_EXCLUDE=flood,pause,resize (or all): leave out what triggers a known defect. */
const EXCLUDE = new Set((process.env.CONVEYOR_MODEL_EXCLUDE ?? '').split(','))
const excluded = (what: 'flood' | 'pause' | 'resize') => EXCLUDE.has(what) || EXCLUDE.has('all')

type Plan =
  | { p: 'o' } // succeed, undefined
  | { p: 'v' } // succeed, `r${id}`
  | { p: 't'; k: number } // throw on attempts 1..k
  | { p: 'e' } // process.exit on the first delivery only
  | { p: 'E' } // process.exit always
  | { p: 's'; ms: number } // busy-wait ms

interface Spec {
  plan: Plan
  /** Bytes of the message: 0 is '', otherwise the plan's header padded up to this size. */
  size: number
  key: number | undefined
  /** Push options: ack and nack, or an ack only (stored as a bare function). */
  nack: boolean
}

interface Config {
  threads: 1 | 2
  ordering: 'key' | 'none'
  attempts: 2 | 3
  backoffMs: 0 | 1
  /** A 'pause' listener that throws on backlog pauses (a user bug the queue must survive). */
  pauseListenerThrows: boolean
  stopTimeoutMs: number
}

// ---------------------------------------------------------------------------------------------
// What a plan calls for

const planText = (plan: Plan) =>
  plan.p === 't' ? `t${plan.k}` : plan.p === 's' ? `s${plan.ms}` : plan.p

function messageText(id: number, spec: Spec): string {
  if (spec.size === 0) return ''
  const header = `${id}.${planText(spec.plan)}|`
  return header.padEnd(Math.max(spec.size, header.length), 'x')
}

function idOf(text: unknown): number {
  if (typeof text !== 'string') return -1
  if (text === '') return 0
  const id = Number(text.slice(0, text.indexOf('.')))
  return Number.isInteger(id) && id > 0 ? id : -1
}

const succeeds = (plan: Plan, attempts: number) =>
  plan.p !== 'E' && !(plan.p === 't' && plan.k >= attempts)

/** Handler calls a message costs when it runs to its end. */
function callsToEnd(plan: Plan, attempts: number): number {
  switch (plan.p) {
    case 't':
      return Math.min(plan.k, attempts - 1) + 1
    case 'e':
      return 2
    case 'E':
      return attempts
    default:
      return 1
  }
}

/** Handler calls a message may have had and still come back unprocessed (only deaths redeliver). */
const callsIfUnprocessed = (plan: Plan, attempts: number) =>
  plan.p === 'e' ? 1 : plan.p === 'E' ? attempts - 1 : 0

const throwsToEnd = (plan: Plan, attempts: number) =>
  plan.p === 't' ? Math.min(plan.k, attempts) : 0

const resultOf = (id: number, plan: Plan) => (plan.p === 'o' ? undefined : `r${id}`)

// ---------------------------------------------------------------------------------------------
// The real system, and everything it told us

type Code = string | undefined

interface Sent {
  seq: number
  /** 0 for '' (anonymous). */
  id: number
  op: 'push' | 'run'
  spec: Spec
  state: 'pending' | 'resolved' | 'rejected'
  value?: unknown
  error?: Error & { code?: Code }
  acks: number
  nacks: number
  nackError?: Error
  settledAfterStop: boolean
}

class Harness {
  readonly queue: Queue
  readonly sent: Sent[] = []
  readonly byId = new Map<number, Sent>()
  private nextId = 1
  /** seq of pushes in the order their ack or nack fired. */
  readonly settleLog: number[] = []
  readonly deadLetters = new Map<number, Error[]>()
  readonly failedAttempts = new Map<number, number[]>()
  failedEvents = 0
  workerExits = 0
  readonly errors: Error[] = []
  readonly resizes: { n: number; state: 'pending' | 'resolved' | 'rejected'; error?: Error }[] = []
  readonly calls = new Int32Array(new SharedArrayBuffer(4 * MAX_IDS))
  readonly throws = new Int32Array(new SharedArrayBuffer(4 * MAX_IDS))
  readonly journal = new Int32Array(new SharedArrayBuffer(4 * (MAX_IDS + 1)))
  stopped = false
  readonly promises: Promise<unknown>[] = []

  constructor(readonly config: Config) {
    this.queue = createQueue({
      handler: fixture('model-handler.mjs'),
      threads: config.threads,
      codec: 'string',
      laneBytes: LANE_BYTES,
      ordering: config.ordering,
      retry: { attempts: config.attempts, backoffMs: config.backoffMs },
      workerData: {
        calls: this.calls.buffer,
        throws: this.throws.buffer,
        journal: this.journal.buffer,
      },
    })
    const q = this.queue
    q.on('dead-letter', ({ message, error }) => {
      const id = idOf(message)
      const list = this.deadLetters.get(id) ?? []
      list.push(error)
      this.deadLetters.set(id, list)
    })
    q.on('failed', (_error, message, attempt) => {
      this.failedEvents++
      const id = idOf(message)
      const list = this.failedAttempts.get(id) ?? []
      list.push(attempt)
      this.failedAttempts.set(id, list)
    })
    q.on('worker-exit', () => {
      this.workerExits++
    })
    q.on('error', (error) => {
      this.errors.push(error)
    })
    if (config.pauseListenerThrows) {
      q.on('pause', ({ reason }) => {
        if (reason === 'backlog') throw new Error('pause listener threw')
      })
    }
  }

  private track(op: 'push' | 'run', spec: Spec): { sent: Sent; text: string } {
    const id = spec.size === 0 ? 0 : this.nextId++
    const sent: Sent = {
      seq: this.sent.length,
      id,
      op,
      spec,
      state: 'pending',
      acks: 0,
      nacks: 0,
      settledAfterStop: false,
    }
    this.sent.push(sent)
    if (id > 0) this.byId.set(id, sent)
    return { sent, text: messageText(id, spec) }
  }

  push(spec: Spec): Promise<unknown> {
    const { sent, text } = this.track('push', spec)
    const ack = () => {
      sent.acks++
      if (this.stopped) sent.settledAfterStop = true
      this.settleLog.push(sent.seq)
    }
    const nack = (error: Error) => {
      sent.nacks++
      sent.nackError = error
      if (this.stopped) sent.settledAfterStop = true
      this.settleLog.push(sent.seq)
    }
    const options = spec.nack ? { key: spec.key, ack, nack } : { key: spec.key, ack }
    return this.record(sent, this.queue.push(text, options))
  }

  run(spec: Spec): Promise<unknown> {
    const { sent, text } = this.track('run', spec)
    return this.record(sent, this.queue.run(text, { key: spec.key }))
  }

  private record(sent: Sent, promise: Promise<unknown>): Promise<unknown> {
    const settled = promise.then(
      (value) => {
        sent.state = 'resolved'
        sent.value = value
      },
      (error) => {
        sent.state = 'rejected'
        sent.error = error
      },
    )
    this.promises.push(settled)
    return settled
  }

  resize(n: number): Promise<unknown> {
    const entry: Harness['resizes'][number] = { n, state: 'pending' }
    this.resizes.push(entry)
    const settled = this.queue.resize(n).then(
      () => {
        entry.state = 'resolved'
      },
      (error) => {
        entry.state = 'rejected'
        entry.error = error
      },
    )
    this.promises.push(settled)
    return settled
  }
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// Commands

interface Model {
  paused: boolean
}

type Cmd = fc.AsyncCommand<Model, Harness>

const specText = (s: Spec) =>
  `${s.size === 0 ? "''" : `${planText(s.plan)}:${s.size}`}${s.key === undefined ? '' : `@k${s.key}`}${s.nack ? '' : '(ack only)'}`

class PushCmd implements Cmd {
  constructor(
    readonly spec: Spec,
    readonly awaited: boolean,
  ) {}
  // An awaited push cannot land while paused (it waits for resume()).
  check = (m: Readonly<Model>) => !this.awaited || !m.paused
  async run(_m: Model, h: Harness) {
    const done = h.push(this.spec)
    if (this.awaited) await within(done, GUARD_MS, `push ${specText(this.spec)}`)
  }
  toString = () => `push(${specText(this.spec)}${this.awaited ? ', awaited' : ''})`
}

class BurstCmd implements Cmd {
  constructor(readonly specs: Spec[]) {}
  check = () => true
  async run(_m: Model, h: Harness) {
    for (const spec of this.specs) void h.push(spec)
  }
  toString = () => `burst(${this.specs.map(specText).join(', ')})`
}

/** Many '' pushes at once, not awaited: the most records a lane can hold. */
class FloodCmd implements Cmd {
  constructor(
    readonly n: number,
    readonly key: number | undefined,
  ) {}
  check = () => !excluded('flood')
  async run(_m: Model, h: Harness) {
    for (let i = 0; i < this.n; i++)
      void h.push({ plan: { p: 'o' }, size: 0, key: this.key, nack: true })
  }
  toString = () => `flood(${this.n} × ''${this.key === undefined ? '' : `@k${this.key}`})`
}

class RunCmd implements Cmd {
  constructor(
    readonly spec: Spec,
    readonly awaited: boolean,
  ) {}
  check = (m: Readonly<Model>) => !this.awaited || !m.paused
  async run(_m: Model, h: Harness) {
    const done = h.run(this.spec)
    if (this.awaited) await within(done, GUARD_MS, `run ${specText(this.spec)}`)
  }
  toString = () => `run(${specText(this.spec)}${this.awaited ? ', awaited' : ''})`
}

class PauseCmd implements Cmd {
  check = () => true
  async run(m: Model, h: Harness) {
    m.paused = true
    h.queue.pause()
  }
  toString = () => 'pause()'
}

class ResumeCmd implements Cmd {
  check = () => true
  async run(m: Model, h: Harness) {
    m.paused = false
    h.queue.resume()
  }
  toString = () => 'resume()'
}

class ResizeCmd implements Cmd {
  constructor(
    readonly n: number,
    readonly awaited: boolean,
  ) {}
  check = () => true
  async run(_m: Model, h: Harness) {
    const done = h.resize(this.n)
    if (this.awaited || excluded('resize')) await within(done, GUARD_MS, `resize(${this.n})`)
  }
  toString = () => `resize(${this.n}${this.awaited ? ', awaited' : ''})`
}

class WaitCmd implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true
  async run() {
    await sleep(this.ms)
  }
  toString = () => `wait(${this.ms})`
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const planArb: fc.Arbitrary<Plan> = fc.oneof(
  { weight: 20, arbitrary: fc.constant({ p: 'o' as const }) },
  { weight: 20, arbitrary: fc.constant({ p: 'v' as const }) },
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 3 }).map((k) => ({ p: 't' as const, k })) },
  { weight: 6, arbitrary: fc.integer({ min: 1, max: 4 }).map((ms) => ({ p: 's' as const, ms })) },
  // Exits cost a worker restart (~50-100 ms each): rare.
  { weight: 1, arbitrary: fc.constant({ p: 'e' as const }) },
  { weight: 1, arbitrary: fc.constant({ p: 'E' as const }) },
)

const sizeArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 1, arbitrary: fc.constant(MAX_PAYLOAD) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 16 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: MAX_PAYLOAD }) },
)

const keyArb = fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3, nil: undefined })

const specArb = (sizes = sizeArb): fc.Arbitrary<Spec> =>
  fc.record({
    plan: planArb,
    size: sizes,
    key: keyArb,
    nack: fc.oneof(
      { weight: 3, arbitrary: fc.constant(true) },
      { weight: 1, arbitrary: fc.constant(false) },
    ),
  })

const commandsArb = fc.commands(
  [
    fc.tuple(specArb(), fc.boolean()).map(([s, a]) => new PushCmd(s, a)),
    fc.tuple(specArb(), fc.boolean()).map(([s, a]) => new PushCmd(s, a)),
    fc.array(specArb(), { minLength: 2, maxLength: 8 }).map((specs) => new BurstCmd(specs)),
    fc.tuple(fc.integer({ min: 100, max: 700 }), keyArb).map(([n, key]) => new FloodCmd(n, key)),
    // run() needs an identifiable message: at least one byte.
    fc
      .tuple(specArb(sizeArb.map((n) => Math.max(n, 1))), fc.boolean())
      .map(([s, a]) => new RunCmd(s, a)),
    fc.constant(new PauseCmd()),
    fc.constant(new ResumeCmd()),
    fc.tuple(fc.constantFrom(1, 2), fc.boolean()).map(([n, a]) => new ResizeCmd(n, a)),
    fc.integer({ min: 0, max: 8 }).map((ms) => new WaitCmd(ms)),
  ],
  { maxCommands: 40, size: 'max', replayPath: process.env.MODEL_REPLAY },
)

const configArb: fc.Arbitrary<Config> = fc.record({
  threads: fc.constantFrom(1 as const, 2 as const),
  ordering: fc.constantFrom('key' as const, 'none' as const),
  attempts: fc.constantFrom(2 as const, 3 as const),
  backoffMs: fc.constantFrom(0 as const, 1 as const),
  pauseListenerThrows: excluded('pause')
    ? fc.constant(false)
    : fc.oneof(
        { weight: 4, arbitrary: fc.constant(false) },
        { weight: 1, arbitrary: fc.constant(true) },
      ),
  // 0 and a few ms cut the drain short (messages come back unprocessed); 10 s lets it finish.
  stopTimeoutMs: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 1, max: 20 }),
    fc.constant(LONG_STOP_MS),
  ),
})

// ---------------------------------------------------------------------------------------------
// Checking a finished run

function check(h: Harness, report: StopReport): string[] {
  const bad: string[] = []
  const { attempts, ordering } = h.config
  const fail = (s: Sent, what: string) =>
    bad.push(`${s.op} #${s.seq} id ${s.id} ${specText(s.spec)}: ${what}`)

  // report.unprocessed, by id ('' by count)
  const unprocessed = new Map<number, number>()
  let anonymousUnprocessed = 0
  for (const m of report.unprocessed) {
    const id = idOf(m)
    if (id === 0) anonymousUnprocessed++
    else if (id < 0 || !h.byId.has(id))
      bad.push(`unprocessed holds a message never sent: ${String(m).slice(0, 20)}`)
    else unprocessed.set(id, (unprocessed.get(id) ?? 0) + 1)
  }
  for (const id of h.deadLetters.keys())
    if (!h.byId.has(id)) bad.push(`dead letter for a message never sent (id ${id})`)

  let accepted = 0
  let acks = 0
  let nacks = 0
  let runsResolved = 0
  let runsRejected = 0
  let anonymousAccepted = 0
  let anonymousAcked = 0
  let expectedExits = 0
  const isAccepted = new Set<number>()

  for (const s of h.sent) {
    const calls = h.calls[s.id]
    const throws = h.throws[s.id]
    const dl = h.deadLetters.get(s.id)?.length ?? 0
    const up = unprocessed.get(s.id) ?? 0
    acks += s.acks
    nacks += s.nacks
    if (s.settledAfterStop) fail(s, 'ack/nack fired after stop() returned')
    if (s.state === 'pending') {
      fail(s, `${s.op}() promise never settled`)
      continue
    }
    const plan = s.spec.plan

    if (s.id === 0) {
      // '' pushes: a plain success, matched to unprocessed by count.
      if (s.nacks > 0) fail(s, `nacked ${s.nacks} times`)
      if (s.state === 'rejected') {
        if (s.acks > 0) fail(s, `rejected (${s.error?.message}) but acked`)
        continue
      }
      accepted++
      anonymousAccepted++
      if (s.acks > 1) fail(s, `acked ${s.acks} times`)
      if (s.acks === 1) anonymousAcked++
      continue
    }

    if (s.op === 'push') {
      if (s.state === 'rejected') {
        // 2. a refused push leaves nothing behind
        const left = [
          s.acks && `acked ${s.acks}×`,
          s.nacks && `nacked ${s.nacks}×`,
          dl && `dead-lettered ${dl}×`,
          up && 'returned unprocessed',
          calls && `handled (${calls} calls)`,
        ].filter(Boolean)
        if (left.length > 0) fail(s, `push rejected (${s.error?.message}) but ${left.join(', ')}`)
        continue
      }
      accepted++
      isAccepted.add(s.id)
      // 1. exactly one ending
      const endings = s.acks + dl + up
      if (endings !== 1 || s.nacks !== (s.spec.nack ? dl : 0)) {
        fail(
          s,
          `endings: ${s.acks} acks, ${s.nacks} nacks, ${dl} dead letters, ${up}× unprocessed (calls ${calls})`,
        )
        continue
      }
      if (s.acks === 1) {
        if (!succeeds(plan, attempts)) fail(s, 'acked, but its plan gives up')
        else if (calls !== callsToEnd(plan, attempts))
          fail(s, `acked after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`)
      } else if (dl === 1) {
        const error = h.deadLetters.get(s.id)![0] as Error & { code?: Code }
        if (s.spec.nack && s.nackError !== error)
          fail(s, 'nack got another error than the dead letter')
        if (succeeds(plan, attempts))
          fail(s, `dead-lettered (${error.message.slice(0, 80)}), but its plan succeeds`)
        else if (plan.p === 'E' && error.code !== 'WORKER_DIED')
          fail(s, `dead letter ${error.code}: ${error.message}`)
        else if (plan.p === 't' && error.message !== `fail ${s.id} attempt ${attempts}`)
          fail(s, `dead letter says '${error.message.slice(0, 80)}'`)
        if (calls !== callsToEnd(plan, attempts))
          fail(
            s,
            `dead-lettered after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`,
          )
      } else if (calls > callsIfUnprocessed(plan, attempts)) {
        fail(s, `returned unprocessed after ${calls} handler calls`)
      }
    } else {
      // run()
      if (dl > 0) fail(s, 'run() message dead-lettered (run() rejects instead)')
      if (s.state === 'resolved') {
        accepted++
        isAccepted.add(s.id)
        runsResolved++
        if (!succeeds(plan, attempts))
          fail(s, `resolved with ${String(s.value)}, but its plan gives up`)
        else if (s.value !== resultOf(s.id, plan)) fail(s, `resolved with ${String(s.value)}`)
        if (up > 0) fail(s, 'resolved and returned unprocessed')
        if (succeeds(plan, attempts) && calls !== callsToEnd(plan, attempts))
          fail(s, `resolved after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`)
      } else {
        const error = s.error!
        const gaveUp = error.code === 'WORKER_DIED' || /^fail \d+ attempt \d+$/.test(error.message)
        if (gaveUp) {
          accepted++
          isAccepted.add(s.id)
          runsRejected++
          if (up > 0) fail(s, `rejected (${error.message}) and returned unprocessed`)
          if (succeeds(plan, attempts))
            fail(s, `rejected: ${error.code ?? ''} ${error.message.slice(0, 120)}`)
          else if (plan.p === 'E' && error.code !== 'WORKER_DIED')
            fail(s, `rejected with '${error.message.slice(0, 80)}'`)
          else if (plan.p === 't' && error.message !== `fail ${s.id} attempt ${attempts}`)
            fail(s, `rejected with '${error.message.slice(0, 80)}'`)
          else if (calls !== callsToEnd(plan, attempts))
            fail(s, `rejected after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`)
        } else if (error.code === 'QUEUE_STOPPED' && up > 0) {
          // Accepted, then returned by stop(): run() rejects with QUEUE_STOPPED.
          accepted++
          isAccepted.add(s.id)
          if (up > 1) fail(s, `returned unprocessed ${up} times`)
          if (calls > callsIfUnprocessed(plan, attempts))
            fail(s, `returned unprocessed after ${calls} handler calls`)
        } else {
          // Refused (QUEUE_STOPPED, QUEUE_FULL, …): nothing may be left behind.
          const why = `${error.code ?? ''} ${error.message}`.trim().slice(0, 80)
          if (up > 0) fail(s, `run() refused (${why}) but returned unprocessed`)
          if (calls > 0) fail(s, `run() refused (${why}) but handled (${calls} calls)`)
        }
      }
    }

    // 5. throws and 'failed' events (attempts 1, 2, … of the calls that threw)
    const wantThrows =
      calls === 0 ? 0 : plan.p === 't' ? Math.min(throwsToEnd(plan, attempts), calls) : 0
    if (throws !== wantThrows) fail(s, `threw ${throws} times, expected ${wantThrows}`)
    const failed = h.failedAttempts.get(s.id) ?? []
    const wantFailed = Array.from({ length: throws }, (_, i) => i + 1)
    if (failed.join() !== wantFailed.join())
      fail(s, `'failed' attempts [${failed}], expected [${wantFailed}]`)
    if (plan.p === 'e') expectedExits += Math.min(calls, 1)
    if (plan.p === 'E') expectedExits += calls
  }

  // '' messages: each acked one was handled once; the rest came back unprocessed.
  if (anonymousAcked + anonymousUnprocessed !== anonymousAccepted)
    bad.push(
      `'' pushes: ${anonymousAccepted} accepted, ${anonymousAcked} acked + ${anonymousUnprocessed} unprocessed`,
    )
  if (h.calls[0] !== anonymousAcked)
    bad.push(`'' messages: handled ${h.calls[0]} times, ${anonymousAcked} acked`)

  // 3. counts
  const deadLetterEvents = [...h.deadLetters.values()].reduce((n, l) => n + l.length, 0)
  const want = {
    pushed: accepted,
    completed: acks + runsResolved,
    deadLettered: deadLetterEvents,
    rejected: runsRejected,
    failed: h.failedEvents,
  }
  for (const [name, value] of Object.entries(want)) {
    const got = report[name as keyof typeof want]
    if (got !== value) bad.push(`report.${name} ${got}, expected ${value}`)
  }
  if (nacks > deadLetterEvents) bad.push(`${nacks} nacks for ${deadLetterEvents} dead letters`)
  const sum = report.completed + report.deadLettered + report.rejected + report.unprocessed.length
  if (sum !== report.pushed)
    bad.push(
      `completed ${report.completed} + deadLettered ${report.deadLettered} + rejected ${report.rejected} + unprocessed ${report.unprocessed.length} = ${sum} ≠ pushed ${report.pushed}`,
    )
  if (report.unprocessed.length > 0 && report.drained)
    bad.push('drained, with messages unprocessed')
  // A run's work is seconds at most: with a long timeout every lane drains, well before it.
  if (h.config.stopTimeoutMs >= LONG_STOP_MS && (!report.drained || report.unprocessed.length > 0))
    bad.push(
      `stop({ timeoutMs: ${h.config.stopTimeoutMs} }) took ${Math.round(report.durationMs)} ms: drained ${report.drained}, ${report.unprocessed.length} unprocessed`,
    )
  if (h.workerExits !== expectedExits)
    bad.push(`${h.workerExits} worker exits, expected ${expectedExits}`)
  for (const r of h.resizes)
    if (r.state === 'pending') bad.push(`resize(${r.n}) still pending after stop() returned`)
  const stats = h.queue.stats()
  if (stats.inFlight !== 0 || stats.waiting !== 0)
    bad.push(`after stop: ${stats.inFlight} in flight, ${stats.waiting} waiting`)

  // 4. ordering 'key': first deliveries, and acks / nacks, in push order per key
  if (ordering === 'key') {
    const journal = Array.from(h.journal.subarray(1, 1 + Math.min(h.journal[0], MAX_IDS)))
    for (let key = 0; key <= 3; key++) {
      const pushedOrder = h.sent.filter((s) => s.spec.key === key && isAccepted.has(s.id))
      const started = journal
        .map((id) => h.byId.get(id))
        .filter((s): s is Sent => s?.spec.key === key && isAccepted.has(s.id))
      const prefix = pushedOrder.slice(0, started.length)
      if (started.some((s, i) => s !== prefix[i]))
        bad.push(
          `key ${key}: first deliveries in order #${started.map((s) => s.seq)}, pushed #${pushedOrder.map((s) => s.seq)}`,
        )
      const settled = h.settleLog.filter((seq) => h.sent[seq].spec.key === key)
      if (settled.some((seq, i) => i > 0 && seq < settled[i - 1]))
        bad.push(`key ${key}: acks/nacks in order #${settled}`)
    }
  }
  return bad
}

// ---------------------------------------------------------------------------------------------

describe('Queue against a model (real workers, small lanes)', () => {
  it('settles every accepted message exactly once, as its plan says, in key order', async () => {
    const seed = process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined
    await fc.assert(
      fc.asyncProperty(configArb, commandsArb, async (config, commands) => {
        const h = new Harness(config)
        const t0 = performance.now()
        let stopped: Promise<StopReport> | undefined
        try {
          await within(h.queue.start(), GUARD_MS, 'start()')
          await fc.asyncModelRun(() => ({ model: { paused: false }, real: h }), commands)
          stopped = h.queue.stop({ timeoutMs: config.stopTimeoutMs })
          const report = await within(
            stopped,
            GUARD_MS,
            `stop({ timeoutMs: ${config.stopTimeoutMs} })`,
          )
          h.stopped = true
          await within(Promise.all(h.promises), AFTER_STOP_MS, 'promises after stop()').catch(
            () => undefined, // reported per message below
          )
          await sleep(10) // nothing may settle after stop() returned
          const bad = check(h, report)
          if (process.env.MODEL_DEBUG) {
            const by = (f: (s: Sent) => boolean) => h.sent.filter(f).length
            console.log(
              JSON.stringify(config),
              commands.toString().slice(0, 300),
              `${Math.round(performance.now() - t0)} ms: sent ${h.sent.length} resolved ${by((s) => s.state === 'resolved')} rejected ${by((s) => s.state === 'rejected')} acks ${h.settleLog.length} unprocessed ${report.unprocessed.length} exits ${h.workerExits} dl ${h.deadLetters.size} errors ${h.errors.map((e) => e.message)}`,
            )
          }
          if (bad.length > 0) {
            const lines = bad.slice(0, 12)
            if (bad.length > lines.length) lines.push(`… ${bad.length - lines.length} more`)
            throw new Error(
              `${JSON.stringify(config)}\nreport ${JSON.stringify({ ...report, unprocessed: report.unprocessed.length })}\n${lines.join('\n')}`,
            )
          }
        } finally {
          // A failed run must not leave its workers running under the next one.
          if (!stopped)
            await within(h.queue.stop({ timeoutMs: 100 }), 5_000, 'cleanup').catch(() => undefined)
        }
      }),
      {
        numRuns: Number(process.env.MODEL_RUNS ?? 25),
        seed,
        path: process.env.MODEL_PATH,
        endOnFailure: false,
        plugins: [fc.interruptAfterTimeLimit(90_000)],
      },
    )
  }, 200_000)
})
