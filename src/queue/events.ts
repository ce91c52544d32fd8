import type { EventEmitter } from 'node:events'
import { asError, emitConveyorWarning as warn } from '../errors.js'

export interface DeadLetter<In = unknown> {
  /** The message, decoded; its raw bytes (a Buffer) when the error is DECODE_FAILED. */
  message: In
  error: Error
}

export interface PauseInfo {
  /** 'user': pause()/resume(); 'backlog': the lanes' fill crossed a watermark. */
  reason: 'user' | 'backlog'
  /** Share of the lanes' ring bytes in use, 0..1 (1 while pushes wait for room). */
  fill: number
}

export interface QueueEvents<In = unknown> {
  /** A handler attempt threw (every attempt). */
  failed: [error: Error, message: In, attempt: number]
  /** A message gave up: its last attempt threw, or workers kept dying on it. */
  'dead-letter': [letter: DeadLetter<In>]
  /** Sources should stop fetching: pause() was called or the lanes crossed the high watermark. */
  pause: [info: PauseInfo]
  /** Sources may fetch again. */
  resume: [info: PauseInfo]
  /** A lane's worker died and was replaced; its lane resumed at the release cursor. */
  'worker-exit': [info: { lane: number; error: Error }]
  /**
   * Worker threads now serving lanes; `reason`, when the thread controller resized
   * (threads: { min, max }), says why with its numbers.
   */
  threads: [count: number, reason?: string]
  /**
   * Something failed outside any one message: a replacement worker's setup, a teardown, a
   * listener or callback that threw. Without a listener these become process warnings.
   */
  error: [error: Error]
}

type Listener = (...args: unknown[]) => unknown

/** Events an EventFence can emit: any, as long as 'error' carries one Error. */
export type FencedEvents = { error: [error: Error] }

/**
 * The one place where conveyor calls user code on the main thread: event listeners, and the
 * ack/nack callbacks of pushes. Each call is fenced: whatever it throws is reported on
 * 'error' and goes no further. User code often runs inside a lane's drain or a push; a throw
 * that unwound those would lose settlements, or reject a push whose message was enqueued.
 *
 * Every listener of an event runs, even after one of them threw. An 'error' listener that
 * throws, or an error nobody listens for, becomes a process warning ('ConveyorWarning'):
 * never an exception, never silence.
 */
export class EventFence<Events extends FencedEvents = QueueEvents> {
  // Untyped: the queue's emitter is EventEmitter<QueueEvents<In>> for its own In.
  constructor(private readonly emitter: EventEmitter) {}

  emit<K extends keyof Events & string>(
    name: K,
    ...args: Events[K] extends unknown[] ? Events[K] : never
  ): void {
    const listeners = this.emitter.rawListeners(name) as Listener[]
    for (const listener of listeners) {
      try {
        listener.apply(this.emitter, args)
      } catch (err) {
        this.error(asError(err))
      }
    }
  }

  /** Whether anyone listens: lets callers skip building an event's arguments. */
  heard(name: keyof Events & string): boolean {
    return this.emitter.listenerCount(name) > 0
  }

  /**
   * Calls a user callback (an ack, a nack) with exactly the arguments its type names. One
   * method per arity, not a rest parameter: an ack runs once per message, and `...args` costs
   * an array each time.
   */
  call0(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.error(asError(err))
    }
  }

  call1<A>(fn: (a: A) => void, a: A): void {
    try {
      fn(a)
    } catch (err) {
      this.error(asError(err))
    }
  }

  call2<A, B>(fn: (a: A, b: B) => void, a: A, b: B): void {
    try {
      fn(a, b)
    } catch (err) {
      this.error(asError(err))
    }
  }

  call3<A, B, C>(fn: (a: A, b: B, c: C) => void, a: A, b: B, c: C): void {
    try {
      fn(a, b, c)
    } catch (err) {
      this.error(asError(err))
    }
  }

  /** Reports an error on 'error', or as a process warning when nobody listens. */
  error(error: Error): void {
    const listeners = this.emitter.rawListeners('error') as Listener[]
    if (listeners.length === 0) {
      warn(error.message, error)
      return
    }
    for (const listener of listeners) {
      try {
        listener.call(this.emitter, error)
      } catch (err) {
        warn(`an 'error' listener threw: ${asError(err).message}`, asError(err))
      }
    }
  }
}
