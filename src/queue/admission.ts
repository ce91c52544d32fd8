import type { Codec } from '../codec/index.js'
import { ConveyorError } from '../errors.js'
import { checkKey, type Key } from './call-options.js'
import { Dispatcher, type Transition } from './dispatcher.js'
import type { Lane } from './lane.js'
import type { BatchCallbacks, Pending } from './pending.js'
import { EventLoopTurns } from './turns.js'

/** What admission needs from the queue around it. */
export interface AdmissionHost {
  /** The error for a push while admission is closed (not started, stopping). */
  refusal(): ConveyorError
  /** `count` messages entered `lane`. */
  accepted(lane: Lane, count: number): void
  /** The waiting list grew. */
  waitingGrew(): void
}

/** A push() or pushMany() waiting for room: its messages, encoded, written in order. */
interface Waiting {
  wires: readonly (string | Uint8Array)[]
  /** The first message not written yet. */
  next: number
  tag: number
  /** Per message; undefined when no message has a key. */
  keys: (Key | undefined)[] | undefined
  /** Per message; undefined when they share `shared` (or have nothing to settle). */
  pendings: (Pending | undefined)[] | undefined
  /** What every message settles, each told its index (a pushMany() without a signal). */
  shared: Pending | undefined
  /** A pushMany(): its rejection says how many messages entered the queue. */
  batch: boolean
  /** Names the call for withdraw() (its signal fired). */
  token: object | undefined
  resolve: () => void
  reject: (error: Error & { accepted?: number }) => void
}

/** A pushMany()'s keys: one for every message, or one per message from a function. */
export type BatchKeys = Key | ((message: unknown, index: number) => Key | undefined) | undefined

const RESOLVED = Promise.resolve()

/**
 * How a message gets into a lane: validate, encode, pick a lane, write; or wait, in push
 * order, in a list bounded by `maxWaiting`, until a watcher finds room.
 *
 * The rule this file keeps: a push that rejects left nothing behind. Every check that can
 * refuse a message (the queue's state, the codec, the size, the waiting list's bound) runs
 * before the message is written or listed; once listed, it leaves the list only by being
 * written (resolve) or by the queue stopping or its signal firing (reject, never written).
 * A pushMany() is checked whole before its first message is written; if it is refused later
 * (stop, signal) while part of it waits, its error's `accepted` says how many went in.
 */
export class Admission {
  private dispatcher: Dispatcher
  private readonly waiting: Waiting[] = []
  private flushing = false
  /** Pushes are taken (the queue runs). Set by the queue on each change of state. */
  private open = false
  /** Pushes must wait even when lanes have room (paused, or a resize holds them). */
  private held = false
  readonly turns = new EventLoopTurns()

  constructor(
    private readonly codec: Codec,
    private readonly byKey: boolean,
    private readonly maxWaiting: number,
    private readonly maxPayload: number,
    private readonly host: AdmissionHost,
    lanes: readonly Lane[],
  ) {
    this.dispatcher = new Dispatcher(lanes, byKey)
  }

  /** Pushes waiting for room. */
  get waitingCount(): number {
    return this.waiting.length
  }

  /** Fields, not callbacks: push() reads them on every call. */
  setOpen(open: boolean): void {
    this.open = open
  }

  setHeld(held: boolean): void {
    this.held = held
  }

  /**
   * Dispatch to these lanes from now on (a resize); with ordering 'key', keys that changed
   * lane wait until `transition` says their old lane caught up.
   */
  setLanes(lanes: readonly Lane[], transition?: Transition): void {
    this.dispatcher = new Dispatcher(lanes, this.byKey, transition)
  }

  /**
   * Resolves once the message is in a lane. `fromProducer`: a push (not a run()), which may
   * be asked to give the event loop a turn (see turns.ts). `token` names the call for
   * withdraw().
   */
  enqueue(
    message: unknown,
    tag: number,
    key: Key | undefined,
    pending: Pending | undefined,
    fromProducer: boolean,
    token?: object,
  ): Promise<void> {
    if (!this.open) return Promise.reject(this.host.refusal())
    let wire: string | Uint8Array
    try {
      wire = this.codec.toWire(message)
    } catch (err) {
      return Promise.reject(this.encodeFailed(err, ''))
    }
    if (this.waiting.length === 0 && !this.held) {
      // The hot path, kept flat (V8 inlines the lane's write here): the picked lane, or for
      // unkeyed messages the emptiest one when that is full.
      let lane = this.dispatcher.pick(key)
      try {
        if (
          lane !== undefined &&
          (lane.write(wire, tag, pending) ||
            ((!this.byKey || key === undefined) &&
              (lane = this.dispatcher.repick()).write(wire, tag, pending)))
        ) {
          this.host.accepted(lane, 1)
          return fromProducer ? (this.turns.due() ?? RESOLVED) : RESOLVED
        }
      } catch (err) {
        return Promise.reject(err)
      }
      // Its key waits for a resize's transition: the size check the write would have made.
      if (lane === undefined && this.tooLarge(wire)) {
        return Promise.reject(this.tooLargeError(wire, ''))
      }
    } else if (this.tooLarge(wire)) {
      // Found now, not when a watcher tries to write it later.
      return Promise.reject(this.tooLargeError(wire, ''))
    }
    if (this.waiting.length >= this.maxWaiting) return Promise.reject(this.full())
    return this.list({
      wires: [wire],
      next: 0,
      tag,
      keys: key === undefined ? undefined : [key],
      pendings: pending === undefined ? undefined : [pending],
      shared: undefined,
      batch: false,
      token,
      resolve: noop,
      reject: noop,
    })
  }

  /**
   * Resolves once every message is in a lane: one encode loop, then one write loop (lanes
   * publish in batches). Nothing is written unless every message encodes, fits and has a
   * valid key. `settle`: what every message settles (told its index), or a function giving
   * message i its own (a batch with a signal), or nothing.
   */
  enqueueMany(
    messages: readonly unknown[],
    keys: BatchKeys,
    settle: BatchCallbacks | ((index: number) => Pending) | undefined,
    token: object | undefined,
  ): Promise<void> {
    if (!this.open) return Promise.reject(this.host.refusal())
    if (this.waiting.length >= this.maxWaiting && this.waiting.length > 0) {
      return Promise.reject(this.full())
    }
    const n = messages.length
    // A pass-through codec's wire forms are the messages themselves: no array of them.
    const passThrough = this.codec.passThrough === true
    const wires: (string | Uint8Array)[] | undefined = passThrough ? undefined : new Array(n)
    const w: Waiting = {
      wires: wires ?? (messages as readonly (string | Uint8Array)[]),
      next: 0,
      tag: 0,
      keys: undefined,
      pendings: undefined,
      shared: typeof settle === 'function' ? undefined : settle,
      batch: true,
      token,
      resolve: noop,
      reject: noop,
    }
    try {
      for (let i = 0; i < n; i++) {
        let wire: string | Uint8Array
        try {
          wire = this.codec.toWire(messages[i])
        } catch (err) {
          throw this.encodeFailed(err, ` at index ${i}`)
        }
        if (this.tooLarge(wire)) throw this.tooLargeError(wire, ` at index ${i}`)
        if (wires) wires[i] = wire
      }
      if (typeof keys === 'function') {
        w.keys = new Array(n)
        for (let i = 0; i < n; i++) {
          const key = keys(messages[i], i)
          checkKey(key, `pushMany(): the key of message ${i}`)
          w.keys[i] = key
        }
      } else if (keys !== undefined) {
        w.keys = new Array(n).fill(keys)
      }
    } catch (err) {
      return Promise.reject(err)
    }
    if (typeof settle === 'function') {
      w.pendings = new Array(n)
      for (let i = 0; i < n; i++) w.pendings[i] = settle(i)
    }
    if (this.waiting.length === 0 && !this.held) {
      try {
        if (this.writeFrom(w)) return this.turns.due() ?? RESOLVED
      } catch (err) {
        return Promise.reject(withAccepted(err as Error, w))
      }
      if (this.maxWaiting === 0) return Promise.reject(withAccepted(this.full(), w))
    }
    // What waits is the batch as it was pushed, whatever the caller does with its array.
    if (passThrough) w.wires = w.wires.slice()
    return this.list(w)
  }

  private list(w: Waiting): Promise<void> {
    const listed = new Promise<void>((resolve, reject) => {
      w.resolve = resolve
      w.reject = reject
    })
    this.waiting.push(w)
    this.host.waitingGrew()
    return listed
  }

  /**
   * Writes `w`'s messages from `w.next` while lanes have room; true once all are in. Each
   * stretch of messages into one lane is reported to the host once.
   */
  private writeFrom(w: Waiting): boolean {
    const { wires, keys, pendings, shared, tag } = w
    const unkeyed = !this.byKey || keys === undefined
    if (unkeyed && pendings === undefined && tag === 0) return this.writeStretches(w)
    let lane: Lane | undefined
    let stretch = 0
    let i = w.next
    try {
      for (; i < wires.length; i++) {
        const key = keys === undefined ? undefined : keys[i]
        const pending = pendings === undefined ? shared : pendings[i]
        let next = this.dispatcher.pick(key)
        // Its key waits for a resize's transition.
        if (next === undefined) return false
        if (!next.write(wires[i], tag, pending, i)) {
          if (!unkeyed && key !== undefined) return false
          next = this.dispatcher.repick()
          if (!next.write(wires[i], tag, pending, i)) return false
        }
        if (next !== lane) {
          if (stretch > 0) this.host.accepted(lane!, stretch)
          lane = next
          stretch = 0
        }
        stretch++
      }
      return true
    } finally {
      // Message i was not written (no room, or a throw): the batch goes on from it.
      w.next = i
      if (stretch > 0) this.host.accepted(lane!, stretch)
    }
  }

  /**
   * writeFrom() for a batch of unkeyed messages that share what they settle (a pushMany()
   * without a signal): each lane takes a stretch in one writeMany() call, and is published
   * when the batch moves on to another lane, and at the end.
   */
  private writeStretches(w: Waiting): boolean {
    const { wires, shared } = w
    const d = this.dispatcher
    const n = wires.length
    let i = w.next
    let last: Lane | undefined
    try {
      while (i < n) {
        let lane = d.pickStretch(n - i)
        let wrote = lane.writeMany(wires, i, i + d.stretch, shared)
        if (wrote === 0) {
          // Full: the emptiest lane, as write() falls back to; none has room, wait. (What the
          // full lane took of this batch is published with `last`, below or in finally.)
          d.repick()
          lane = d.pickStretch(n - i)
          wrote = lane.writeMany(wires, i, i + d.stretch, shared)
          if (wrote === 0) return false
        }
        if (last !== lane) last?.publishWritten()
        last = lane
        i += wrote
        this.host.accepted(lane, wrote)
      }
      return true
    } finally {
      w.next = i
      last?.publishWritten()
    }
  }

  /** Moves waiting pushes into lanes, in order, while there is room. */
  flush(): void {
    // Re-entered from a callback (an ack that pushes); the outer call keeps going, in order.
    if (this.flushing) return
    this.flushing = true
    try {
      const { waiting } = this
      while (waiting.length > 0 && !this.held && this.open) {
        const w = waiting[0]
        if (!this.writeFrom(w)) return
        waiting.shift()
        w.resolve()
      }
    } finally {
      this.flushing = false
    }
  }

  /** Refuses every waiting push (the queue is stopping); what waits was never written. */
  rejectWaiting(error: () => Error): void {
    for (const w of this.waiting.splice(0)) w.reject(withAccepted(error(), w))
  }

  /**
   * Takes the call named `token` off the waiting list, if it waits, and rejects it with
   * `error`. Returns how many of its messages were written (all of them when it does not
   * wait: it was written already, or refused).
   */
  withdraw(token: object, error: Error): number | undefined {
    const at = this.waiting.findIndex((w) => w.token === token)
    if (at < 0) return undefined
    const [w] = this.waiting.splice(at, 1)
    w.reject(withAccepted(error, w))
    // The next waiting push may fit now.
    if (at === 0) queueMicrotask(() => this.flush())
    return w.next
  }

  private full(): ConveyorError {
    return new ConveyorError(
      'QUEUE_FULL',
      `${this.waiting.length} pushes already wait for room (maxWaiting): await push() before pushing more, or raise maxWaiting`,
    )
  }

  private encodeFailed(err: unknown, where: string): ConveyorError {
    return new ConveyorError(
      'ENCODE_FAILED',
      `codec '${this.codec.name}' could not encode the message${where}: ${(err as Error).message}`,
      { cause: err },
    )
  }

  private tooLargeError(wire: string | Uint8Array, where: string): ConveyorError {
    return new ConveyorError(
      'MESSAGE_TOO_LARGE',
      `a message of ${byteLength(wire)} bytes${where} cannot fit a lane (at most ${this.maxPayload} bytes per message): raise laneBytes or send smaller messages`,
    )
  }

  private tooLarge(wire: string | Uint8Array): boolean {
    if (typeof wire !== 'string') return wire.byteLength > this.maxPayload
    return wire.length * 3 > this.maxPayload && Buffer.byteLength(wire) > this.maxPayload
  }
}

function noop(): void {}

/** A batch's rejection says how many of its messages entered the queue. */
function withAccepted<E extends Error & { accepted?: number }>(error: E, w: Waiting): E {
  if (w.batch) error.accepted = w.next
  return error
}

function byteLength(wire: string | Uint8Array): number {
  return typeof wire === 'string' ? Buffer.byteLength(wire) : wire.byteLength
}
