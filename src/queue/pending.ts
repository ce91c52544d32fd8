/** What the main thread remembers about one message in a lane, if anything at all. */
export type Pending = PushPending | RunPending

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
