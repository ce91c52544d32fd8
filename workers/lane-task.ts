import type { MessagePort } from 'node:worker_threads'
import { type Codec, loadCodec } from '../src/codec/index.js'
import { exposeControl } from '../src/lane/control.js'
import { type LaneExit, type LaneInit, SAMPLES_AT, STAT_SLOTS } from '../src/lane/protocol.js'
import { SampleMailboxWriter } from '../src/lane/sample-mailbox.js'
import { RingReader } from '../src/ring/index.js'
import { AbortWatch } from './abort-watch.js'
import { Attempts } from './attempt.js'
import { CompletionWriter } from './completion-writer.js'
import { type LoadedHandler, loadHandler, SetupFailed, teardownAll } from './handler-host.js'
import { type LoopEnd, runLaneLoop } from './lane-loop.js'

interface Task extends LaneInit {
  control: MessagePort
}

/**
 * The Piscina task that serves one lane until its ring is closed and drained (or aborted):
 * load the codec and the handler, answer control calls, run the lane loop, tear down.
 * Handler failures to load or set up come back as an exit kind, never as a crash, so the
 * main thread can tell them from a worker that died.
 */
export default async function laneTask(task: Task): Promise<LaneExit> {
  let handler: LoadedHandler
  let codec: Codec
  try {
    codec = await loadCodec(task.codec)
    handler = await loadHandler(task.handler, task.lane)
  } catch (err) {
    task.control.close()
    if (err instanceof SetupFailed) return { kind: 'setup-failed', message: err.message }
    // HandlerInvalid, or the codec module (loaded fine on the main thread) failing here.
    return { kind: 'handler-invalid', message: err instanceof Error ? err.message : String(err) }
  }
  const { definition, context } = handler
  exposeControl(
    {
      ready: async () => {},
      broadcast: async (event) => {
        await definition.onEvent?.(event, context)
      },
    },
    task.control,
  )
  try {
    const reader = new RingReader(task.requests)
    const ring = Buffer.from(task.requests)
    const stats = new Float64Array(task.stats, 0, STAT_SLOTS)
    const completions = new CompletionWriter(task.completions, reader)
    const attempts = new Attempts(ring, codec, definition, context, completions, stats, task.retry)
    const samples = new SampleMailboxWriter(task.stats, SAMPLES_AT)
    const watch = new AbortWatch(new Int32Array(task.requests), new Int32Array(task.stats), reader)
    context.watch = watch
    let end: LoopEnd
    try {
      end = await runLaneLoop(reader, attempts, stats, watch, samples)
    } finally {
      context.watch = undefined
    }
    if (end === 'aborted') return { kind: 'aborted' }
    const teardownError = await teardownAll()
    return teardownError ? { kind: 'drained', teardownError } : { kind: 'drained' }
  } finally {
    task.control.close()
  }
}
