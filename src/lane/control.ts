import type { MessagePort } from 'node:worker_threads'
import * as Comlink from 'comlink'
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs'

/**
 * The control path of a lane (Comlink over a MessagePort). Never used for throughput: it
 * carries events and waits for readiness, while messages travel through the rings.
 */
export interface LaneControl {
  /** Resolves once the handler's setup ran and the lane loop is reading. */
  ready(): Promise<void>
  /** Runs the handler's onEvent in this worker. */
  broadcast(event: unknown): Promise<void>
}

export function exposeControl(control: LaneControl, port: MessagePort): void {
  Comlink.expose(control, nodeEndpoint(port))
}

export function wrapControl(port: MessagePort): Comlink.Remote<LaneControl> {
  return Comlink.wrap<LaneControl>(nodeEndpoint(port))
}
