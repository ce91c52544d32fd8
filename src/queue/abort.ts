import { AbortError } from '../errors.js'
import type { Admission } from './admission.js'
import type { BatchCallbacks, BatchPending, PushPending, RunPending } from './pending.js'

/**
 * How a caller's AbortSignal reaches its messages. Before a message is written, the call is
 * withdrawn from the waiting list and rejects (nothing of it entered the queue). After, the
 * message's record is flagged in shared memory: the worker skips it, or aborts `ctx.signal`
 * while it runs, and it settles as aborted (nack with an AbortError, counted). A run() also
 * rejects at once.
 *
 * One listener per signal, however many messages share it (a long-lived signal passed to
 * every push would otherwise collect thousands of listeners and Node's leak warning); a
 * message leaves its signal's set when it settles, and the listener goes with the last one.
 */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError('the operation was aborted', { cause: signal.reason })
}

interface Member {
  abort(error: AbortError): void
}

export class Aborts {
  private readonly bySignal = new Map<AbortSignal, { members: Set<Member>; listener: () => void }>()

  constructor(private readonly admission: Admission) {}

  /** Connects `signal` to one push() or run() message; the pending object names the call. */
  attach(signal: AbortSignal, pending: PushPending | RunPending): void {
    const member: Member = {
      abort: (error) => {
        if (pending.lane === undefined) {
          this.admission.withdraw(pending, error)
          return
        }
        pending.aborted = true
        pending.lane.flagAborted(pending)
        if (pending.kind === 'run') pending.reject(error)
      },
    }
    pending.detach = this.join(signal, member)
  }

  /** Connects `signal` to a pushMany()'s messages. */
  batch(signal: AbortSignal, callbacks: BatchCallbacks): BatchSignal {
    const batch = new BatchSignal(this.admission, callbacks)
    batch.leave = this.join(signal, batch)
    return batch
  }

  /** Adds `member` to the signal's set; returns how it leaves. */
  private join(signal: AbortSignal, member: Member): () => void {
    let entry = this.bySignal.get(signal)
    if (entry === undefined) {
      const members = new Set<Member>()
      const listener = () => {
        this.bySignal.delete(signal)
        // One error per call: a batch's rejection writes its own `accepted` on it.
        for (const m of members) m.abort(abortError(signal))
      }
      entry = { members, listener }
      this.bySignal.set(signal, entry)
      signal.addEventListener('abort', listener, { once: true })
    }
    const { members, listener } = entry
    members.add(member)
    return () => {
      if (members.delete(member) && members.size === 0 && !signal.aborted) {
        this.bySignal.delete(signal)
        signal.removeEventListener('abort', listener)
      }
    }
  }
}

/** The messages of one pushMany() with a signal; the object names the call. */
export class BatchSignal implements Member {
  private readonly members: BatchPending[] = []
  /** Members not settled or refused yet: the batch leaves its signal with the last one. */
  private remaining = 0
  leave: () => void = () => {}

  constructor(
    private readonly admission: Admission,
    private readonly callbacks: BatchCallbacks,
  ) {}

  readonly pendingAt = (index: number): BatchPending => {
    const p: BatchPending = {
      kind: 'batch',
      batch: this.callbacks,
      index,
      tracked: true,
      lane: undefined,
      tagIndex: 0,
      end: 0,
      aborted: false,
      detach: this.settled,
    }
    this.members.push(p)
    this.remaining++
    return p
  }

  /** pushMany() resolved: an empty batch has no member whose settlement would leave. */
  readonly written = (): void => {
    if (this.members.length === 0) this.leave()
  }

  /** pushMany() rejected: members never written will not settle. */
  readonly refused = (error: unknown): never => {
    for (const p of this.members) {
      if (p.lane === undefined && p.detach !== undefined) {
        p.detach = undefined
        this.settled()
      }
    }
    // Refused before any member was made (a bad message): nothing else would leave.
    if (this.members.length === 0) this.leave()
    throw error
  }

  private readonly settled = (): void => {
    if (--this.remaining === 0) this.leave()
  }

  abort(error: AbortError): void {
    for (const p of this.members) {
      if (p.lane !== undefined && p.detach !== undefined) {
        p.aborted = true
        p.lane.flagAborted(p)
      }
    }
    this.admission.withdraw(this, error)
  }
}
