import { getEventListeners } from 'node:events'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { createQueue, type Queue, type StopReport } from '../../dist/src/index.js'
import { fixture, sleep } from './helpers.js'

/*
 * Model-based test of the public Queue. Each fast-check run starts a real queue (small lanes,
 * so pushes wait for room and the largest message is a lane's limit), runs a generated list of
 * commands — push (awaited, or fired in bursts), pushMany (batches of 0..12 messages: one key, a
 * key function or none; ack(index), and nack(error, index, message) or not; now and then invalid
 * as a whole), run(), abort (of one of 3 AbortController slots whose signals the calls above
 * take, so one signal often serves several calls; at once, or 1..10 ms later while the next
 * commands run; then the slot keeps its fired signal, so later calls are refused, or gets a new
 * one), race (maybe a slow message, then calls of one key behind it on one signal, then that
 * signal's abort in the same tick or a few ms later), pause/resume, resize, short waits — then
 * always stop() (a third of the runs also abort a slot as it starts, or 1 / 5 ms into it), and
 * compares everything the queue reported with what the messages' plans call for. The plan
 * travels in the message (see test/fixtures/model-handler.mjs: 'w' waits for ctx.signal or a
 * few ms, then throws or returns; 'y' returns either way); the handler counts calls and throws,
 * records first deliveries, whether a call is running and how the last one ended, all in shared
 * memory. Right after each abort() returns the test copies the handler's call counts and running
 * flags: "at the abort" below means that copy (the queue's abort listener runs inside abort(),
 * so every record of that signal is flagged by then).
 *
 * Properties, per run:
 *  1. every accepted message ends exactly once: completed (ack, ack(index), run() resolves),
 *     dead-lettered ('dead-letter' + nack), given up (run() rejects with the handler's error or
 *     WORKER_DIED: report.rejected), aborted (nack / nack(index) with an AbortError; silently for
 *     an ack-only call), or handed back by stop() (report.unprocessed; a run() then rejects with
 *     QUEUE_STOPPED, unless its AbortError came first) — an ending its plan allows. A run()
 *     rejected by its abort says nothing of its message: the ending is read from the handler's
 *     memory (last call returned: completed; threw: given up if each throw was a 'failed' event,
 *     else aborted; exited: given up at the death limit, else aborted); one neither handled nor
 *     returned was withdrawn or skipped, which the test cannot tell apart, so report.pushed and
 *     report.aborted may both exceed the definite counts by the same number, at most the number
 *     of such runs;
 *  2. a call that rejected left nothing behind: no ack, no nack, no dead letter, never handled,
 *     not returned; a call made with a fired signal rejects with an AbortError (code ABORT_ERR);
 *     an AbortError comes only from the call's own signal; one turn of the event loop after an
 *     abort, no call made with that signal is pending (a waiting one is withdrawn, a run()
 *     rejects at once);
 *  3. pushMany: a valid batch resolves, or rejects with `accepted` = k, an integer below its
 *     length (0 for an empty batch): messages 0..k-1 were accepted (and each ends exactly once),
 *     the others left nothing behind; an invalid batch (a message over the lane limit, a key
 *     function returning NaN) is refused whole with MESSAGE_TOO_LARGE / INVALID_OPTION and no
 *     `accepted` (or an AbortError, its signal having fired); ack(index) / nack(…, index,
 *     message) fire at most once per message, each with its own index and message;
 *  4. counts: report.pushed counts accepted messages; completed, deadLettered, rejected, aborted
 *     and failed match the endings and events above (within 1.'s allowance), and completed +
 *     deadLettered + rejected + aborted + unprocessed adds up to pushed;
 *  5. ordering 'key': per key (batches' keys included), the messages handed to the handler
 *     were first handed to it in push order, the skipped ones left out (a prefix of the rest),
 *     and acks / nacks fire in push order;
 *  6. handler calls, throws, 'failed' events and worker exits match the plans;
 *  7. after stop(), no 'abort' listener is left on any controller's signal.
 *
 * What an abort allows. The abort of a message's signal while it is in a lane (accepted, its
 * call made before the abort) races with its handling. Where both outcomes are legal the test
 * accepts either, and only these:
 *  - it ends exactly once: completed, aborted or unprocessed; dead-lettered / given up only if
 *    its final attempt had begun at the abort: for a 't' plan its last throw was counted by then
 *    (calls at the abort ≥ its calls to the end: the worker reads the flag after the throw), for
 *    an 'E' plan the fatal delivery may have read the record just before the flag was set
 *    (calls at the abort ≥ calls to the end - 1);
 *  - at most one handler call begins after the abort: a record read just before the flag was
 *    set, or the next attempt after a backoff (the worker does not read the flag in between);
 *  - aborted: after no handler call, after a call that threw, or after one that exited (the
 *    redelivery was skipped); never after a call that returned, nor with an 'E' plan's last
 *    death. A throw is a 'failed' event unless it is an AbortError answering the abort (a 'w'
 *    that saw ctx.signal): a 't' throw is reported even when its message ends aborted;
 *  - ordering 'key': if a message of the same key pushed before it was running at the abort,
 *    the worker had not read it yet, so it is skipped: aborted, or unprocessed, with no call (a
 *    '' message: never acked);
 *  - only a message whose own signal fired is aborted; a 'w' / 'y' handler sees ctx.signal
 *    abort only for its own signal or for stop() past its timeout (never when the report says
 *    drained); a 'w' that saw it threw, so it does not complete.
 * Independent of signals, stop() past its timeout (report.drained false) aborts the lanes: a 't'
 * attempt that throws then (or whose retry backoff the abort cuts short) leaves its message
 * unprocessed, its throw reported as 'failed'; a 'w' wait that throws for it leaves its message
 * unprocessed with no 'failed' event (the record may have been read just before the abort). A message comes back unprocessed only after calls that all threw or exited:
 * 't' at most min(k, attempts) calls, 'w' and 'e' 1, 'E' attempts - 1, other plans none.
 *
 * CONVEYOR_MODEL_EXCLUDE=flood,pause,resize (or all) leaves out what triggers the defects known
 * on 2026-11-25 ('' floods, a throwing 'pause' listener, stop() while a resize is in flight), to
 * check the test itself or look past one defect. MODEL_RUNS widens a run; MODEL_SEED, MODEL_PATH
 * and MODEL_REPLAY (fast-check's seed, path and the commands' replayPath) replay a failure,
 * though timing makes some failures flaky; MODEL_DEBUG=1 prints a line per run, and at the end
 * how often each case the properties speak of came up.
 */

const LANE_BYTES = 4096
/** The largest message a lane takes: half the ring less the record header. */
const MAX_PAYLOAD = LANE_BYTES / 2 - 8
const MAX_IDS = 1 << 14
/** AbortController slots the generated calls take their signal from. */
const SLOTS = 3
/** Bound on anything awaited in a run: a hang fails instead of hanging. */
const GUARD_MS = 30_000
/** After stop() returned, every push / run promise must already be settled (give it this). */
const AFTER_STOP_MS = 1_000
/** A stop() timeout no run's work comes near: stop() must drain every lane within it. */
const LONG_STOP_MS = 10_000
/** CONVEYOR_MODEL_EXCLUDE=flood,pause,resize (or all): leave out what triggers a known defect. */
const EXCLUDE = new Set((process.env.CONVEYOR_MODEL_EXCLUDE ?? '').split(','))
const excluded = (what: 'flood' | 'pause' | 'resize') => EXCLUDE.has(what) || EXCLUDE.has('all')

/** model-handler.mjs's info slots per id, and how a call ended. */
const INFO = { RUNNING: 0, LAST: 1, HOW: 2, ENTERED_ABORTED: 3 } as const
const RETURNED = 1
const THREW = 2
const EXITED = 3
/** HOW: a 'w' / 'y' wait ended because ctx.signal aborted. */
const BY_SIGNAL = 2

type Plan =
  | { p: 'o' } // succeed, undefined
  | { p: 'v' } // succeed, `r${id}`
  | { p: 't'; k: number } // throw on attempts 1..k
  | { p: 'e' } // process.exit on the first delivery only
  | { p: 'E' } // process.exit always
  | { p: 's'; ms: number } // busy-wait ms
  | { p: 'w'; ms: number } // wait for ctx.signal (then throw) or ms (then return)
  | { p: 'y'; ms: number } // wait for ctx.signal or ms, then return

interface Spec {
  plan: Plan
  /** Bytes of the message: 0 is '', otherwise the plan's header padded up to this size. */
  size: number
  key: number | undefined
  /** Push options: ack and nack, or an ack only (stored as a bare function). */
  nack: boolean
  /** The AbortController slot whose signal the call takes, if any. */
  signal: number | undefined
}

interface BatchSpec {
  /** Plan, size and key of each message (their nack and signal are the batch's). */
  specs: Spec[]
  /** No key, one key for all, or a function giving each message its spec's key. */
  keys: 'none' | 'one' | 'fn'
  key: number
  nack: boolean
  signal: number | undefined
  /** The batch must be refused whole: a message over the limit, or a NaN key, at `at`. */
  invalid: { at: number; what: 'size' | 'key' } | undefined
}

interface Config {
  threads: 1 | 2
  ordering: 'key' | 'none'
  attempts: 2 | 3
  backoffMs: 0 | 1
  /** A 'pause' listener that throws on backlog pauses (a user bug the queue must survive). */
  pauseListenerThrows: boolean
  stopTimeoutMs: number
  /** Abort this slot's signal as stop() begins (delayMs 0: in the same tick). */
  abortAtStop: { slot: number; delayMs: number } | undefined
}

// ---------------------------------------------------------------------------------------------
// What a plan calls for

const planText = (plan: Plan) =>
  plan.p === 't' ? `t${plan.k}` : 'ms' in plan ? `${plan.p}${plan.ms}` : plan.p

function messageText(id: number, plan: Plan, size: number): string {
  if (size === 0) return ''
  const header = `${id}.${planText(plan)}|`
  return header.padEnd(Math.max(size, header.length), 'x')
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

/** Handler calls a message may have had and still come back unprocessed (all threw or exited). */
function callsIfUnprocessed(plan: Plan, attempts: number): number {
  switch (plan.p) {
    case 't':
      return Math.min(plan.k, attempts)
    case 'e':
    case 'w':
      return 1
    case 'E':
      return attempts - 1
    default:
      return 0
  }
}

const resultOf = (id: number, plan: Plan) => (plan.p === 'o' ? undefined : `r${id}`)

// ---------------------------------------------------------------------------------------------
// The real system, and everything it told us

type Code = string | undefined
type Ending = 'completed' | 'deadLettered' | 'rejected' | 'aborted' | 'unprocessed'

/** One AbortController a slot held. */
interface Ctl {
  n: number
  controller: AbortController
  /** Logical time (Harness.clock) of its abort. */
  abortedAt: number | undefined
  /** Per id, the handler's calls and RUNNING flag right after abort() returned. */
  callsAt: Int32Array | undefined
  runningAt: Uint8Array | undefined
}

/** One push(), pushMany() or run() call. */
interface Call {
  n: number
  op: 'push' | 'run' | 'batch'
  /** Logical time of the call. */
  at: number
  ctl: Ctl | undefined
  /** Its signal had fired before the call. */
  preAborted: boolean
  hasNack: boolean
  /** A batch that must be refused whole. */
  invalid: boolean
  messages: Sent[]
  state: 'pending' | 'resolved' | 'rejected'
  value?: unknown
  error?: Error & { code?: Code; accepted?: unknown }
}

/** One message. */
interface Sent {
  seq: number
  /** 0 for '' (anonymous). */
  id: number
  call: Call
  /** Its index in a batch (0 otherwise). */
  index: number
  spec: Spec
  /** The key it was pushed with. */
  key: number | undefined
  text: string
  acks: number
  nackErrors: Error[]
  nackMessages: unknown[]
  settledAfterStop: boolean
}

class Harness {
  readonly queue: Queue
  readonly calls: Call[] = []
  readonly sent: Sent[] = []
  readonly byId = new Map<number, Sent>()
  private nextId = 1
  /** Logical time: every call and every abort takes the next tick. */
  private clock = 0
  /** The controllers the slots hold now, and every one they ever held. */
  readonly slots: Ctl[] = []
  readonly ctls: Ctl[] = []
  /** seq of messages in the order their ack or nack fired. */
  readonly settleLog: number[] = []
  readonly deadLetters = new Map<number, Error[]>()
  readonly failedAttempts = new Map<number, number[]>()
  failedEvents = 0
  workerExits = 0
  readonly errors: Error[] = []
  /** What went wrong while the commands ran (checked with the rest at the end). */
  readonly anomalies: string[] = []
  readonly resizes: { n: number; state: 'pending' | 'resolved' | 'rejected'; error?: Error }[] = []
  readonly handled = new Int32Array(new SharedArrayBuffer(4 * MAX_IDS))
  readonly throws = new Int32Array(new SharedArrayBuffer(4 * MAX_IDS))
  readonly journal = new Int32Array(new SharedArrayBuffer(4 * (MAX_IDS + 1)))
  readonly info = new Int32Array(new SharedArrayBuffer(4 * 4 * MAX_IDS))
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
        calls: this.handled.buffer,
        throws: this.throws.buffer,
        journal: this.journal.buffer,
        info: this.info.buffer,
      },
    })
    for (let slot = 0; slot < SLOTS; slot++) this.slots.push(this.newCtl())
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

  info1(id: number, slot: number): number {
    return Atomics.load(this.info, 4 * id + slot)
  }

  private newCtl(): Ctl {
    const ctl: Ctl = {
      n: this.ctls.length,
      controller: new AbortController(),
      abortedAt: undefined,
      callsAt: undefined,
      runningAt: undefined,
    }
    this.ctls.push(ctl)
    return ctl
  }

  private newCall(op: Call['op'], slot: number | undefined, hasNack: boolean): Call {
    const ctl = slot === undefined ? undefined : this.slots[slot]
    const call: Call = {
      n: this.calls.length,
      op,
      at: ++this.clock,
      ctl,
      preAborted: ctl?.controller.signal.aborted ?? false,
      hasNack,
      invalid: false,
      messages: [],
      state: 'pending',
    }
    this.calls.push(call)
    return call
  }

  private track(call: Call, spec: Spec, key: number | undefined, size = spec.size): Sent {
    const id = size === 0 ? 0 : this.nextId++
    const sent: Sent = {
      seq: this.sent.length,
      id,
      call,
      index: call.messages.length,
      spec,
      key,
      text: messageText(id, spec.plan, size),
      acks: 0,
      nackErrors: [],
      nackMessages: [],
      settledAfterStop: false,
    }
    call.messages.push(sent)
    this.sent.push(sent)
    if (id > 0) this.byId.set(id, sent)
    return sent
  }

  private acked(sent: Sent | undefined, what: string): void {
    if (!sent) {
      this.anomalies.push(`${what}: no such message`)
      return
    }
    sent.acks++
    if (this.stopped) sent.settledAfterStop = true
    this.settleLog.push(sent.seq)
  }

  private nacked(sent: Sent | undefined, error: Error, message: unknown, what: string): void {
    if (!sent) {
      this.anomalies.push(`${what}: no such message`)
      return
    }
    sent.nackErrors.push(error)
    sent.nackMessages.push(message)
    if (this.stopped) sent.settledAfterStop = true
    this.settleLog.push(sent.seq)
  }

  push(spec: Spec): Promise<unknown> {
    const call = this.newCall('push', spec.signal, spec.nack)
    const sent = this.track(call, spec, spec.key)
    const ack = () => this.acked(sent, 'push ack')
    const nack = (error: Error, message: unknown) => this.nacked(sent, error, message, 'push nack')
    const signal = call.ctl?.controller.signal
    const options = spec.nack
      ? { key: spec.key, ack, nack, signal }
      : signal
        ? { key: spec.key, ack, signal }
        : { key: spec.key, ack }
    return this.record(call, this.queue.push(sent.text, options))
  }

  run(spec: Spec): Promise<unknown> {
    const call = this.newCall('run', spec.signal, false)
    const sent = this.track(call, spec, spec.key)
    const signal = call.ctl?.controller.signal
    return this.record(call, this.queue.run(sent.text, { key: spec.key, signal }))
  }

  pushMany(batch: BatchSpec): Promise<unknown> {
    const call = this.newCall('batch', batch.signal, batch.nack)
    call.invalid = batch.invalid !== undefined
    const keys = batch.specs.map((s) => (batch.keys === 'one' ? batch.key : s.key))
    const texts = batch.specs.map((spec, i) => {
      const tooLarge = batch.invalid?.what === 'size' && batch.invalid.at === i
      const key = batch.keys === 'none' ? undefined : keys[i]
      const full = { ...spec, key, nack: batch.nack, signal: batch.signal }
      return this.track(call, full, key, tooLarge ? MAX_PAYLOAD + 1 : spec.size).text
    })
    const at = (index: unknown, what: string): Sent | undefined => {
      const sent = Number.isInteger(index) ? call.messages[index as number] : undefined
      if (!sent) this.anomalies.push(`pushMany #${call.n}: ${what}(${String(index)}) out of range`)
      return sent
    }
    const key =
      batch.keys === 'none'
        ? undefined
        : batch.keys === 'one'
          ? batch.key
          : (_message: unknown, index: number) =>
              batch.invalid?.what === 'key' && batch.invalid.at === index ? Number.NaN : keys[index]
    const ack = (index: number) => this.acked(at(index, 'ack'), `pushMany #${call.n} ack`)
    const nack = (error: Error, index: number, message: unknown) =>
      this.nacked(at(index, 'nack'), error, message, `pushMany #${call.n} nack`)
    const signal = call.ctl?.controller.signal
    return this.record(
      call,
      this.queue.pushMany(texts, batch.nack ? { key, ack, nack, signal } : { key, ack, signal }),
    )
  }

  /** Gives the slot a new signal if its signal fired. */
  fresh(slot: number): void {
    if (this.slots[slot].abortedAt !== undefined) this.slots[slot] = this.newCtl()
  }

  /**
   * Aborts the slot's signal (once: a fired signal stays fired), copies the handler's calls and
   * running flags, and gives the slot a new controller if asked. One turn later, no call made
   * with that signal may still be pending: waiting ones are withdrawn, run() rejects at once.
   */
  async abort(slot: number, renew: boolean): Promise<void> {
    const ctl = this.slots[slot]
    if (ctl.abortedAt === undefined) {
      ctl.abortedAt = ++this.clock
      ctl.controller.abort(new Error(`model: signal ${ctl.n} aborted`))
      const n = this.nextId
      ctl.callsAt = new Int32Array(n)
      ctl.runningAt = new Uint8Array(n)
      for (let id = 1; id < n; id++) {
        ctl.callsAt[id] = Atomics.load(this.handled, id)
        ctl.runningAt[id] = this.info1(id, INFO.RUNNING)
      }
    }
    if (renew) this.slots[slot] = this.newCtl()
    await new Promise<void>((resolve) => setImmediate(resolve))
    for (const call of this.calls) {
      if (call.ctl === ctl && call.state === 'pending')
        this.anomalies.push(`${callText(call)}: still pending a turn after its signal aborted`)
    }
  }

  private record(call: Call, promise: Promise<unknown>): Promise<unknown> {
    const settled = promise.then(
      (value) => {
        call.state = 'resolved'
        call.value = value
      },
      (error) => {
        call.state = 'rejected'
        call.error = error
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

const signalText = (slot: number | undefined) => (slot === undefined ? '' : `~s${slot}`)

const specText = (s: Spec) =>
  `${s.size === 0 ? "''" : `${planText(s.plan)}:${s.size}`}${s.key === undefined ? '' : `@k${s.key}`}${s.nack ? '' : '(ack only)'}${signalText(s.signal)}`

const callText = (c: Call) => `${c.op === 'batch' ? 'pushMany' : c.op} call #${c.n}`

const batchText = (b: BatchSpec) =>
  `[${b.specs.map((s) => `${s.size === 0 ? "''" : `${planText(s.plan)}:${s.size}`}${b.keys === 'fn' && s.key !== undefined ? `@k${s.key}` : ''}`).join(', ')}]${b.keys === 'one' ? `@k${b.key}` : b.keys === 'fn' ? '@fn' : ''}${b.nack ? '' : '(ack only)'}${signalText(b.signal)}${b.invalid ? ` invalid ${b.invalid.what} at ${b.invalid.at}` : ''}`

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

class PushManyCmd implements Cmd {
  constructor(
    readonly batch: BatchSpec,
    readonly awaited: boolean,
  ) {}
  check = (m: Readonly<Model>) => !this.awaited || !m.paused
  async run(_m: Model, h: Harness) {
    const done = h.pushMany(this.batch)
    if (this.awaited) await within(done, GUARD_MS, `pushMany ${batchText(this.batch)}`)
  }
  toString = () => `pushMany(${batchText(this.batch)}${this.awaited ? ', awaited' : ''})`
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
      void h.push({ plan: { p: 'o' }, size: 0, key: this.key, nack: true, signal: undefined })
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

/** Aborts a slot's signal now, or `inMs` later while the next commands run. */
class AbortCmd implements Cmd {
  constructor(
    readonly slot: number,
    readonly renew: boolean,
    readonly inMs: number,
  ) {}
  check = () => true
  async run(_m: Model, h: Harness) {
    if (this.inMs === 0) await h.abort(this.slot, this.renew)
    else h.promises.push(sleep(this.inMs).then(() => h.abort(this.slot, this.renew)))
  }
  toString = () =>
    `abort(s${this.slot}${this.inMs ? ` in ${this.inMs} ms` : ''}${this.renew ? ', then a new signal' : ''})`
}

/** Calls that race with their abort: see raceArb. */
interface Race {
  blocker: Spec | undefined
  calls: { spec: Spec; run: boolean }[]
  /** The calls as one pushMany() instead. */
  batch: BatchSpec | undefined
  slot: number
  inMs: number
  renew: boolean
}

/**
 * A slow message (maybe), then calls behind it with one signal (mostly of the same key), then
 * that signal's abort: in the same tick (records written, maybe not yet read) or a few ms later.
 */
class RaceCmd implements Cmd {
  constructor(readonly race: Race) {}
  check = () => true
  async run(_m: Model, h: Harness) {
    const { blocker, calls, batch, slot, inMs, renew } = this.race
    h.fresh(slot)
    if (blocker) void h.push(blocker)
    if (batch) void h.pushMany(batch)
    else for (const c of calls) void (c.run ? h.run(c.spec) : h.push(c.spec))
    if (inMs === 0) await h.abort(slot, renew)
    else h.promises.push(sleep(inMs).then(() => h.abort(slot, renew)))
  }
  toString = () => {
    const { blocker, calls, batch, slot, inMs, renew } = this.race
    const what = batch
      ? `pushMany(${batchText(batch)})`
      : calls.map((c) => `${c.run ? 'run' : 'push'}(${specText(c.spec)})`).join(', ')
    return `race(${blocker ? `push(${specText(blocker)}), ` : ''}${what}, abort(s${slot}${inMs ? ` in ${inMs} ms` : ''}${renew ? ', then a new signal' : ''}))`
  }
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
  // Waits hold a lane up to 15 ms unless their signal fires: a few.
  { weight: 4, arbitrary: fc.integer({ min: 2, max: 15 }).map((ms) => ({ p: 'w' as const, ms })) },
  { weight: 2, arbitrary: fc.integer({ min: 2, max: 15 }).map((ms) => ({ p: 'y' as const, ms })) },
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

/** Half the calls take a slot's signal. */
const signalArb = fc.option(fc.integer({ min: 0, max: SLOTS - 1 }), { freq: 2, nil: undefined })

const nackArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(true) },
  { weight: 1, arbitrary: fc.constant(false) },
)

const specArb = (sizes = sizeArb): fc.Arbitrary<Spec> =>
  fc
    .record({ plan: planArb, size: sizes, key: keyArb, nack: nackArb, signal: signalArb })
    // An aborted '' is told apart from an unprocessed one by its nack only.
    .map((s) => (s.size === 0 && s.signal !== undefined ? { ...s, nack: true } : s))

const batchArb: fc.Arbitrary<BatchSpec> = fc
  .record({
    specs: fc.array(specArb(), { maxLength: 12 }),
    keys: fc.constantFrom('none' as const, 'one' as const, 'fn' as const),
    key: fc.integer({ min: 0, max: 3 }),
    nack: nackArb,
    signal: signalArb,
    invalid: fc.oneof(
      { weight: 7, arbitrary: fc.constant(undefined) },
      {
        weight: 1,
        arbitrary: fc.record({
          at: fc.nat(),
          what: fc.constantFrom('size' as const, 'key' as const),
        }),
      },
    ),
  })
  .map((b) => ({
    ...b,
    nack: b.nack || (b.signal !== undefined && b.specs.some((s) => s.size === 0)),
    invalid:
      b.invalid && b.specs.length > 0 && (b.invalid.what === 'size' || b.keys === 'fn')
        ? { ...b.invalid, at: b.invalid.at % b.specs.length }
        : undefined,
  }))

const slowPlanArb: fc.Arbitrary<Plan> = fc.oneof(
  fc.integer({ min: 2, max: 15 }).map((ms) => ({ p: 'w' as const, ms })),
  fc.integer({ min: 2, max: 15 }).map((ms) => ({ p: 'y' as const, ms })),
  fc.integer({ min: 1, max: 4 }).map((ms) => ({ p: 's' as const, ms })),
)

const raceArb: fc.Arbitrary<Race> = fc
  .record({
    key: fc.integer({ min: 0, max: 3 }),
    slot: fc.integer({ min: 0, max: SLOTS - 1 }),
    blocker: fc.option(
      fc.record({ plan: slowPlanArb, size: fc.integer({ min: 1, max: 64 }), signal: fc.boolean() }),
      { freq: 4, nil: undefined },
    ),
    calls: fc.array(fc.tuple(specArb(), fc.boolean()), { minLength: 1, maxLength: 6 }),
    asBatch: fc.boolean(),
    nack: nackArb,
    inMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10 })),
    renew: fc.boolean(),
  })
  .map((r) => {
    // The calls take the race's signal, and its key unless they have none.
    const calls = r.calls.map(([spec, run]) => ({
      spec: {
        ...spec,
        size: run ? Math.max(spec.size, 1) : spec.size,
        key: spec.key === undefined ? undefined : r.key,
        nack: spec.nack || spec.size === 0,
        signal: r.slot,
      },
      run: run && r.asBatch === false,
    }))
    return {
      blocker: r.blocker && {
        plan: r.blocker.plan,
        size: r.blocker.size,
        key: r.key,
        nack: true,
        signal: r.blocker.signal ? r.slot : undefined,
      },
      calls,
      batch: r.asBatch
        ? {
            specs: calls.map((c) => c.spec),
            keys: 'fn' as const,
            key: r.key,
            nack: r.nack || calls.some((c) => c.spec.size === 0),
            signal: r.slot,
            invalid: undefined,
          }
        : undefined,
      slot: r.slot,
      inMs: r.inMs,
      renew: r.renew,
    }
  })

const commandsArb = fc.commands(
  [
    fc.tuple(specArb(), fc.boolean()).map(([s, a]) => new PushCmd(s, a)),
    fc.tuple(specArb(), fc.boolean()).map(([s, a]) => new PushCmd(s, a)),
    fc.array(specArb(), { minLength: 2, maxLength: 8 }).map((specs) => new BurstCmd(specs)),
    fc.tuple(batchArb, fc.boolean()).map(([b, a]) => new PushManyCmd(b, a)),
    fc.tuple(fc.integer({ min: 100, max: 700 }), keyArb).map(([n, key]) => new FloodCmd(n, key)),
    // run() needs an identifiable message: at least one byte.
    fc
      .tuple(specArb(sizeArb.map((n) => Math.max(n, 1))), fc.boolean())
      .map(([s, a]) => new RunCmd(s, a)),
    fc
      .tuple(
        fc.integer({ min: 0, max: SLOTS - 1 }),
        fc.boolean(),
        fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10 })),
      )
      .map(([slot, renew, inMs]) => new AbortCmd(slot, renew, inMs)),
    raceArb.map((r) => new RaceCmd(r)),
    raceArb.map((r) => new RaceCmd(r)),
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
  abortAtStop: fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 1,
      arbitrary: fc.record({
        slot: fc.integer({ min: 0, max: SLOTS - 1 }),
        delayMs: fc.constantFrom(0, 1, 5),
      }),
    },
  ),
})

// ---------------------------------------------------------------------------------------------
// Checking a finished run

/** How often each case the properties speak of came up (printed with MODEL_DEBUG=1). */
const coverage = new Map<string, number>()
const cover = (what: string) => coverage.set(what, (coverage.get(what) ?? 0) + 1)

const isAbortError = (e: unknown) => e instanceof Error && e.name === 'AbortError'
const gaveUpError = (e: Error & { code?: Code }) =>
  e.code === 'WORKER_DIED' || /^fail \d+ attempt \d+$/.test(e.message)

function check(h: Harness, report: StopReport): string[] {
  const bad: string[] = [...h.anomalies]
  const { attempts, ordering } = h.config
  const where = (s: Sent) =>
    `${s.call.op === 'batch' ? `pushMany #${s.call.n}[${s.index}]` : `${s.call.op} #${s.call.n}`} id ${s.id} ${specText(s.spec)}`
  const fail = (s: Sent, what: string) => bad.push(`${where(s)}: ${what}`)

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

  // 2, 3. which messages each call got accepted
  const accepted = new Set<Sent>()
  for (const call of h.calls) {
    if (call.state === 'pending') {
      bad.push(`${callText(call)}: never settled`)
      continue
    }
    const error = call.error
    const aborted = call.ctl?.abortedAt !== undefined
    if (call.state === 'rejected' && isAbortError(error)) {
      if (!aborted)
        bad.push(`${callText(call)}: rejected with an AbortError, its signal never fired`)
      else if (error?.code !== 'ABORT_ERR')
        bad.push(`${callText(call)}: AbortError with code ${error?.code}`)
    }
    if (call.preAborted) cover('call made with a fired signal')
    else if (call.state === 'rejected' && isAbortError(error)) cover('call withdrawn by its abort')
    if (call.invalid) cover('invalid batch')
    if (call.preAborted && !(call.state === 'rejected' && isAbortError(error)))
      bad.push(`${callText(call)}: its signal had fired, yet it ${call.state} (${error?.message})`)
    if (call.invalid && !call.preAborted) {
      const code = error?.code
      if (call.state !== 'rejected' || (code !== 'MESSAGE_TOO_LARGE' && code !== 'INVALID_OPTION'))
        bad.push(`${callText(call)}: an invalid batch ${call.state} (${code} ${error?.message})`)
    }
    if (call.op === 'push' && call.state === 'resolved') accepted.add(call.messages[0])
    if (call.op !== 'batch') continue
    let count = call.state === 'resolved' ? call.messages.length : 0
    if (call.state === 'rejected') {
      const n = error?.accepted
      const refusedWhole = call.preAborted || call.invalid
      if (refusedWhole) {
        if (n !== undefined && n !== 0)
          bad.push(`${callText(call)}: refused whole (${error?.message}), yet accepted ${n}`)
      } else if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
        bad.push(`${callText(call)}: rejected (${error?.message}) with accepted ${String(n)}`)
      } else if (n > call.messages.length || (n > 0 && n === call.messages.length)) {
        bad.push(`${callText(call)}: rejected, accepted ${n} of ${call.messages.length}`)
      } else {
        count = n
        if (n > 0) cover('batch refused after part of it went in')
      }
    }
    for (const s of call.messages.slice(0, count)) accepted.add(s)
  }

  // 1, 6. every message
  const ending = new Map<Sent, Ending>()
  /** run() rejected by its abort, never handled nor returned: withdrawn, or skipped. */
  let ambiguousRuns = 0
  let anonymousAccepted = 0
  let anonymousAcked = 0
  let anonymousAborted = 0
  let expectedExits = 0

  for (const s of h.sent) {
    const call = s.call
    if (call.state === 'pending') continue
    if (s.settledAfterStop) fail(s, 'ack/nack fired after stop() returned')
    for (const m of s.nackMessages) if (m !== s.text) fail(s, 'nack got another message')
    const nacks = s.nackErrors.length
    const abortNacks = s.nackErrors.filter(isAbortError).length
    const ctl = call.ctl
    /** Its signal fired while it was in a lane (accepted, called before the abort). */
    const ctlAt =
      ctl?.abortedAt !== undefined && call.at < ctl.abortedAt && ctl.callsAt ? ctl : undefined

    if (s.id === 0) {
      // '' messages: a plain success, matched to unprocessed by count.
      if (!accepted.has(s)) {
        if (s.acks + nacks > 0) fail(s, `refused (${call.error?.message}) but acked/nacked`)
        continue
      }
      anonymousAccepted++
      if (nacks !== abortNacks) fail(s, `nacked with ${s.nackErrors.map((e) => e.message)}`)
      if (abortNacks > 0 && !ctlAt) fail(s, 'aborted, but its signal never fired')
      if (s.acks + nacks > 1) fail(s, `${s.acks} acks, ${nacks} nacks`)
      else if (s.acks === 1) anonymousAcked++
      else if (abortNacks === 1) anonymousAborted++
      continue
    }

    const id = s.id
    const plan = s.spec.plan
    const calls = h.handled[id]
    const throws = h.throws[id]
    const last = h.info1(id, INFO.LAST)
    const how = h.info1(id, INFO.HOW)
    const dl = h.deadLetters.get(id)?.length ?? 0
    const up = unprocessed.get(id) ?? 0
    const failed = h.failedAttempts.get(id) ?? []
    const leftBehind = () =>
      [
        s.acks && `acked ${s.acks}×`,
        nacks && `nacked ${nacks}×`,
        dl && `dead-lettered ${dl}×`,
        up && 'returned unprocessed',
        calls && `handled (${calls} calls)`,
        failed.length && `${failed.length} 'failed' events`,
      ].filter(Boolean)

    let end: Ending | undefined
    if (call.op !== 'run') {
      if (!accepted.has(s)) {
        // 2. a refused message leaves nothing behind
        const left = leftBehind()
        if (left.length > 0) fail(s, `refused (${call.error?.message}) but ${left.join(', ')}`)
        continue
      }
      if (!call.hasNack && nacks > 0) fail(s, `nacked ${nacks}× without a nack`)
      const dlNacks = nacks - abortNacks
      if (call.hasNack && dlNacks !== dl)
        fail(s, `${dl} dead letters, ${dlNacks} nacks other than AbortErrors`)
      if (call.hasNack && dl === 1 && !s.nackErrors.includes(h.deadLetters.get(id)![0]))
        fail(s, 'nack got another error than the dead letter')
      // An ack-only message says nothing when it is aborted.
      const silent = !call.hasNack && ctlAt && s.acks + dl + up === 0 ? 1 : 0
      const count = s.acks + dl + abortNacks + up + silent
      if (count !== 1) {
        fail(
          s,
          `endings: ${s.acks} acks, ${abortNacks} abort nacks, ${dl} dead letters, ${up}× unprocessed (calls ${calls})`,
        )
        continue
      }
      end = s.acks ? 'completed' : dl ? 'deadLettered' : up ? 'unprocessed' : 'aborted'
    } else {
      if (dl > 0) fail(s, 'run() message dead-lettered (run() rejects instead)')
      const error = call.error
      if (call.state === 'resolved') {
        end = 'completed'
        if (call.value !== resultOf(id, plan)) fail(s, `resolved with ${String(call.value)}`)
        if (up > 0) fail(s, 'resolved and returned unprocessed')
      } else if (error && isAbortError(error)) {
        if (up > 0) end = 'unprocessed'
        else if (calls === 0) {
          ambiguousRuns++
          cover('run() aborted unseen (withdrawn or skipped)')
        } else if (last === RETURNED) end = 'completed'
        // A throw is reported either way; only a 't' plan's last attempt gives up.
        else if (last === THREW) end = plan.p === 't' && throws >= attempts ? 'rejected' : 'aborted'
        else if (last === EXITED) end = plan.p === 'E' && calls >= attempts ? 'rejected' : 'aborted'
        else fail(s, `handled ${calls}×, the last call ended as ${last}`)
        if (end === undefined) {
          // Withdrawn or skipped: nothing else may be left of it.
          const left = leftBehind()
          if (left.length > 0) fail(s, `run() aborted, never handled, but ${left.join(', ')}`)
          continue
        }
      } else if (error && gaveUpError(error)) {
        end = 'rejected'
        if (up > 0) fail(s, `rejected (${error.message}) and returned unprocessed`)
        if (plan.p === 'E' && error.code !== 'WORKER_DIED')
          fail(s, `rejected with '${error.message.slice(0, 80)}'`)
        else if (plan.p === 't' && error.message !== `fail ${id} attempt ${attempts}`)
          fail(s, `rejected with '${error.message.slice(0, 80)}'`)
      } else if (error?.code === 'QUEUE_STOPPED' && up > 0) {
        // Accepted, then returned by stop(): run() rejects with QUEUE_STOPPED.
        end = 'unprocessed'
      } else {
        // Refused (QUEUE_STOPPED, QUEUE_FULL, …): nothing may be left behind.
        const why = `${error?.code ?? ''} ${error?.message}`.trim().slice(0, 80)
        const left = leftBehind()
        if (left.length > 0) fail(s, `run() refused (${why}) but ${left.join(', ')}`)
        continue
      }
      accepted.add(s)
    }
    ending.set(s, end)

    // The ending must be one its plan (and its abort, if any) allows.
    let unreported = 0 // a last throw that was no 'failed' event (aborted, or abandoned by stop())
    switch (end) {
      case 'completed':
        if (!succeeds(plan, attempts)) fail(s, 'completed, but its plan gives up')
        else if (calls !== callsToEnd(plan, attempts))
          fail(s, `completed after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`)
        if (last !== RETURNED) fail(s, `completed, but its last call ended as ${last}`)
        if (plan.p === 'w' && how === BY_SIGNAL) fail(s, "completed, but its 'w' wait was aborted")
        break
      case 'deadLettered':
      case 'rejected': {
        if (end === 'deadLettered') {
          const error = h.deadLetters.get(id)![0] as Error & { code?: Code }
          if (plan.p === 'E' && error.code !== 'WORKER_DIED')
            fail(s, `dead letter ${error.code}: ${error.message}`)
          else if (plan.p === 't' && error.message !== `fail ${id} attempt ${attempts}`)
            fail(s, `dead letter says '${error.message.slice(0, 80)}'`)
        }
        if (succeeds(plan, attempts)) fail(s, `${end}, but its plan succeeds`)
        else if (calls !== callsToEnd(plan, attempts))
          fail(s, `${end} after ${calls} handler calls, expected ${callsToEnd(plan, attempts)}`)
        if (ctlAt) {
          const before = ctlAt.callsAt![id] ?? 0
          const need = callsToEnd(plan, attempts) - (plan.p === 'E' ? 1 : 0)
          if (before < need)
            fail(
              s,
              `${end} after its signal fired at ${before} handler calls (final attempt later)`,
            )
        }
        break
      }
      case 'aborted':
        cover(calls > 0 ? 'aborted after a call' : 'aborted before any call')
        if (!call.hasNack && call.op !== 'run') cover('aborted silently (ack only)')
        if (!ctlAt) fail(s, 'aborted, but its signal never fired while it was in a lane')
        if (calls > 0 && last !== THREW && last !== EXITED)
          fail(s, `aborted after ${calls} calls, the last of which returned`)
        if (plan.p === 'E' && calls >= attempts) fail(s, `aborted after ${calls} deaths`)
        // Only an AbortError answering the abort (a 'w' that saw ctx.signal) is no 'failed'.
        if (calls > 0 && last === THREW && plan.p === 'w') unreported = 1
        break
      case 'unprocessed':
        if (up > 1) fail(s, `returned unprocessed ${up} times`)
        if (calls > callsIfUnprocessed(plan, attempts) || (calls > 0 && last === RETURNED))
          fail(s, `returned unprocessed after ${calls} handler calls (the last ended as ${last})`)
        if (calls > 0 && last === THREW && plan.p === 'w') unreported = 1
        if (calls > 0) cover('unprocessed after a call')
        break
    }
    if (ctlAt && end !== 'aborted') cover(`${end} though its signal fired in a lane`)
    if (how === BY_SIGNAL) cover(`ctx.signal ended a '${plan.p}' wait`)
    if (ctlAt && calls > (ctlAt.callsAt![id] ?? 0) + 1)
      fail(s, `${calls} handler calls, ${ctlAt.callsAt![id] ?? 0} when its signal fired`)
    if (how === BY_SIGNAL && !ctlAt && report.drained)
      fail(s, 'ctx.signal aborted: neither its signal nor stop() past its timeout fired')

    // 6. throws and 'failed' events (attempts 1, 2, … of the calls that threw and were reported)
    const wantFailed = Array.from({ length: Math.max(0, throws - unreported) }, (_, i) => i + 1)
    if (failed.join() !== wantFailed.join())
      fail(s, `'failed' attempts [${failed}], expected [${wantFailed}] (${throws} throws)`)
    if (plan.p === 't' && throws !== Math.min(calls, plan.k))
      fail(s, `threw ${throws} times in ${calls} calls`)
    if (plan.p === 'e') expectedExits += Math.min(calls, 1)
    if (plan.p === 'E') expectedExits += calls
  }

  // Ordering 'key': a message behind a running one of its key had not been read at the abort,
  // so it must be skipped (or returned unprocessed), never handled.
  if (ordering === 'key') {
    for (const m of accepted) {
      const ctl = m.call.ctl
      if (m.key === undefined || ctl?.abortedAt === undefined || !ctl.runningAt) continue
      if (m.call.at > ctl.abortedAt) continue
      const running = ctl.runningAt
      const blocker = h.sent.find(
        (p) =>
          p.seq < m.seq && p.key === m.key && p.id > 0 && p.id < running.length && running[p.id],
      )
      if (!blocker) continue
      cover('skipped behind a running message of its key')
      const end = ending.get(m)
      const handled = m.id > 0 && h.handled[m.id] > 0
      if (
        handled ||
        m.acks > 0 ||
        (end !== undefined && end !== 'aborted' && end !== 'unprocessed')
      )
        bad.push(
          `${where(m)}: its signal fired while ${where(blocker)} ran ahead of it, yet it ended ${end ?? (m.acks ? 'acked' : '?')} after ${m.id > 0 ? h.handled[m.id] : '?'} calls`,
        )
    }
  }

  // '' messages: each acked one was handled once; the others were aborted or came back.
  if (anonymousAcked + anonymousAborted + anonymousUnprocessed !== anonymousAccepted)
    bad.push(
      `'' messages: ${anonymousAccepted} accepted, ${anonymousAcked} acked + ${anonymousAborted} aborted + ${anonymousUnprocessed} unprocessed`,
    )
  if (h.handled[0] !== anonymousAcked)
    bad.push(`'' messages: handled ${h.handled[0]} times, ${anonymousAcked} acked`)

  // 4. counts
  const count = (what: Ending) => [...ending.values()].filter((e) => e === what).length
  const deadLetterEvents = [...h.deadLetters.values()].reduce((n, l) => n + l.length, 0)
  const definitelyPushed = [...accepted].length
  const definitelyAborted = count('aborted') + anonymousAborted
  const want = {
    completed: count('completed') + anonymousAcked,
    deadLettered: deadLetterEvents,
    rejected: count('rejected'),
    failed: h.failedEvents,
  }
  for (const [name, value] of Object.entries(want)) {
    const got = report[name as keyof typeof want]
    if (got !== value) bad.push(`report.${name} ${got}, expected ${value}`)
  }
  if (count('deadLettered') !== deadLetterEvents)
    bad.push(`${deadLetterEvents} dead letters for ${count('deadLettered')} dead-lettered messages`)
  const extraPushed = report.pushed - definitelyPushed
  const extraAborted = report.aborted - definitelyAborted
  if (extraPushed !== extraAborted || extraPushed < 0 || extraPushed > ambiguousRuns)
    bad.push(
      `report.pushed ${report.pushed}, aborted ${report.aborted}: expected ${definitelyPushed} and ${definitelyAborted}, plus the same 0..${ambiguousRuns} (runs aborted unseen)`,
    )
  const sum =
    report.completed +
    report.deadLettered +
    report.rejected +
    report.aborted +
    report.unprocessed.length
  if (sum !== report.pushed)
    bad.push(
      `completed ${report.completed} + deadLettered ${report.deadLettered} + rejected ${report.rejected} + aborted ${report.aborted} + unprocessed ${report.unprocessed.length} = ${sum} ≠ pushed ${report.pushed}`,
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

  // 7. no listener left on any signal
  for (const ctl of h.ctls) {
    const left = getEventListeners(ctl.controller.signal, 'abort').length
    if (left > 0)
      bad.push(
        `signal ${ctl.n}${ctl.abortedAt === undefined ? '' : ' (aborted)'}: ${left} 'abort' listeners left after stop()`,
      )
  }

  // 5. ordering 'key': first deliveries, and acks / nacks, in push order per key
  if (ordering === 'key') {
    const journal = Array.from(h.journal.subarray(1, 1 + Math.min(h.journal[0], MAX_IDS)))
    const skipped = (s: Sent) => h.handled[s.id] === 0 && ending.get(s) !== 'unprocessed'
    for (let key = 0; key <= 3; key++) {
      const pushedOrder = h.sent.filter(
        (s) => s.key === key && s.id > 0 && accepted.has(s) && !skipped(s),
      )
      const started = journal
        .map((id) => h.byId.get(id))
        .filter((s): s is Sent => s?.key === key && accepted.has(s))
      const prefix = pushedOrder.slice(0, started.length)
      if (started.some((s, i) => s !== prefix[i]))
        bad.push(
          `key ${key}: first deliveries in order #${started.map((s) => s.seq)}, pushed #${pushedOrder.map((s) => s.seq)}`,
        )
      const settled = h.settleLog.filter((seq) => h.sent[seq].key === key)
      if (settled.some((seq, i) => i > 0 && seq < settled[i - 1]))
        bad.push(`key ${key}: acks/nacks in order #${settled}`)
    }
  }
  return bad
}

// ---------------------------------------------------------------------------------------------

describe('Queue against a model (real workers, small lanes)', () => {
  it('settles every accepted message exactly once, as its plan and its signal allow, in key order', async () => {
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
          const stopAbort = config.abortAtStop
          const aborting = !stopAbort
            ? undefined
            : stopAbort.delayMs === 0
              ? h.abort(stopAbort.slot, false)
              : sleep(stopAbort.delayMs).then(() => h.abort(stopAbort.slot, false))
          const report = await within(
            stopped,
            GUARD_MS,
            `stop({ timeoutMs: ${config.stopTimeoutMs} })`,
          )
          await aborting
          h.stopped = true
          await within(Promise.all(h.promises), AFTER_STOP_MS, 'promises after stop()').catch(
            () => undefined, // reported per message below
          )
          await sleep(10) // nothing may settle after stop() returned
          const bad = check(h, report)
          if (process.env.MODEL_DEBUG) {
            cover('runs')
            const by = (f: (c: Call) => boolean) => h.calls.filter(f).length
            console.log(
              JSON.stringify(config),
              commands.toString().slice(0, 300),
              `${Math.round(performance.now() - t0)} ms: calls ${h.calls.length} (messages ${h.sent.length}) resolved ${by((c) => c.state === 'resolved')} rejected ${by((c) => c.state === 'rejected')} aborts ${h.ctls.filter((c) => c.abortedAt !== undefined).length} acks/nacks ${h.settleLog.length} aborted ${report.aborted} unprocessed ${report.unprocessed.length} exits ${h.workerExits} dl ${h.deadLetters.size} errors ${h.errors.map((e) => e.message)}`,
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
    if (process.env.MODEL_DEBUG)
      console.log('coverage', JSON.stringify(Object.fromEntries([...coverage].sort())))
  }, 200_000)
})
