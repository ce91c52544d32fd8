/**
 * What the main thread remembers about one message in a lane, if anything at all. A push
 * with only an ack keeps the ack function itself: no object per message on the hot path.
 */
export type Pending = PushPending | RunPending | (() => void)

export interface PushPending {
  kind: 'push'
  ack?: () => void
  nack?: (error: Error) => void
}

export interface RunPending {
  kind: 'run'
  resolve: (value: unknown) => void
  reject: (error: Error) => void
}

export function isRun(p: Pending | undefined): p is RunPending {
  return typeof p === 'object' && p.kind === 'run'
}

/** The nack to call if this message is dead-lettered, if any. */
export function nackOf(p: Pending | undefined): ((error: Error) => void) | undefined {
  return typeof p === 'object' && p.kind === 'push' ? p.nack : undefined
}
