import { defineHandler } from 'conveyor-lanes/worker'

/**
 * conveyor handler for the queue suite's end-to-end noop case and its run() latency case: the
 * message arrives decoded (codec 'string'); nothing is done with it. The length is returned so
 * a run() caller gets a small result back, as from the Piscina peer.
 */
export default defineHandler({
  handle(message: string): number {
    return message.length
  },
})
