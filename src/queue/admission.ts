import type { Codec } from '../codec/index.js'
import { ConveyorError, describeValue } from '../errors.js'
import { Dispatcher } from './dispatcher.js'
import type { Lane } from './lane.js'
import type { Pending } from './pending.js'
import { EventLoopTurns } from './turns.js'

export type Key = string | number

/** What admission needs from the queue around it. */
export interface AdmissionHost {
  /** The error for a push while admission is closed (not started, stopping). */
  refusal(): ConveyorError
  /** A message entered `lane`. */
  accepted(lane: Lane): void
  /** The waiting list grew. */
  waitingGrew(): void
}

interface Waiting {
  wire: string | Uint8Array
  tag: number
  key: Key | undefined
  pending: Pending | undefined
  resolve: () => void
  reject: (error: Error) => void
}

const RESOLVED = Promise.resolve()

/**
 * How a message gets into a lane: validate, encode, pick a lane, write; or wait, in push
 * order, in a list bounded by `maxWaiting`, until a watcher finds room.
 *
 * The rule this file keeps: a push that rejects left nothing behind. Every check that can
 * refuse a message (the queue's state, the codec, the size, the waiting list's bound) runs
 * before the message is written or listed; once listed, it leaves the list only by being
 * written (resolve) or by the queue stopping (reject, never written).
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

  /** Dispatch to these lanes from now on (a resize). */
  setLanes(lanes: readonly Lane[]): void {
    this.dispatcher = new Dispatcher(lanes, this.byKey)
  }

  /**
   * Resolves once the message is in a lane. `fromProducer`: a push (not a run()), which may
   * be asked to give the event loop a turn (see turns.ts).
   */
  enqueue(
    message: unknown,
    tag: number,
    key: Key | undefined,
    pending: Pending | undefined,
    fromProducer: boolean,
  ): Promise<void> {
    if (!this.open) return Promise.reject(this.host.refusal())
    let wire: string | Uint8Array
    try {
      wire = this.codec.toWire(message)
    } catch (err) {
      return Promise.reject(
        new ConveyorError(
          'ENCODE_FAILED',
          `codec '${this.codec.name}' could not encode the message: ${(err as Error).message}`,
          { cause: err },
        ),
      )
    }
    if (this.waiting.length === 0 && !this.held) {
      // The hot path, kept flat (V8 inlines the lane's write here): the picked lane, or for
      // unkeyed messages the emptiest one when that is full.
      try {
        let lane = this.dispatcher.pick(key)
        if (
          lane.write(wire, tag, pending) ||
          ((!this.byKey || key === undefined) &&
            (lane = this.dispatcher.repick()).write(wire, tag, pending))
        ) {
          this.host.accepted(lane)
          return fromProducer ? (this.turns.due() ?? RESOLVED) : RESOLVED
        }
      } catch (err) {
        return Promise.reject(err)
      }
    } else if (this.tooLarge(wire)) {
      // Found now, not when a watcher tries to write it later.
      return Promise.reject(
        new ConveyorError(
          'MESSAGE_TOO_LARGE',
          `a message of ${byteLength(wire)} bytes cannot fit a lane (at most ${this.maxPayload} bytes per message): raise laneBytes or send smaller messages`,
        ),
      )
    }
    if (this.waiting.length >= this.maxWaiting) {
      return Promise.reject(
        new ConveyorError(
          'QUEUE_FULL',
          `${this.waiting.length} pushes already wait for room (maxWaiting): await push() before pushing more, or raise maxWaiting`,
        ),
      )
    }
    let resolve!: () => void
    let reject!: (error: Error) => void
    const listed = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    this.waiting.push({ wire, tag, key, pending, resolve, reject })
    this.host.waitingGrew()
    return listed
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
        const lane =
          this.byKey && w.key !== undefined ? this.dispatcher.pick(w.key) : this.dispatcher.repick()
        if (!lane.write(w.wire, w.tag, w.pending)) return
        waiting.shift()
        this.host.accepted(lane)
        w.resolve()
      }
    } finally {
      this.flushing = false
    }
  }

  /** Refuses every waiting push (the queue is stopping); none of them was written. */
  rejectWaiting(error: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(error)
  }

  private tooLarge(wire: string | Uint8Array): boolean {
    if (typeof wire !== 'string') return wire.byteLength > this.maxPayload
    return wire.length * 3 > this.maxPayload && Buffer.byteLength(wire) > this.maxPayload
  }
}

function byteLength(wire: string | Uint8Array): number {
  return typeof wire === 'string' ? Buffer.byteLength(wire) : wire.byteLength
}

/**
 * What push() remembers for a message, from its options, validated: a push from plain
 * JavaScript may pass anything, and a bad callback found later would fail far from its cause.
 */
export function pendingOfPush(options: unknown): Pending | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `push(message, options): options must be an object { key?, ack?, nack? }, got ${describeValue(options)}`,
    )
  }
  const { ack, nack, key } = options as { ack?: unknown; nack?: unknown; key?: unknown }
  checkKey(key, 'push')
  if (ack !== undefined && typeof ack !== 'function') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `push(): ack must be a function, got ${describeValue(ack)}`,
    )
  }
  if (nack !== undefined && typeof nack !== 'function') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `push(): nack must be a function, got ${describeValue(nack)}`,
    )
  }
  if (nack === undefined) return ack as (() => void) | undefined
  return { kind: 'push', ack: ack as (() => void) | undefined, nack: nack as (e: Error) => void }
}

/** The key of run()'s or push()'s options, validated. */
export function keyOf(options: unknown, call: 'push' | 'run'): Key | undefined {
  if (options === undefined) return undefined
  if (options === null || typeof options !== 'object') {
    throw new ConveyorError(
      'INVALID_OPTION',
      `${call}(message, options): options must be an object, got ${describeValue(options)}`,
    )
  }
  const { key } = options as { key?: unknown }
  checkKey(key, call)
  return key as Key | undefined
}

function checkKey(key: unknown, call: string): void {
  if (key === undefined || typeof key === 'string') return
  if (typeof key === 'number' && Number.isFinite(key)) return
  throw new ConveyorError(
    'INVALID_OPTION',
    `${call}(): key must be a string or a finite number, got ${describeValue(key)}`,
  )
}
