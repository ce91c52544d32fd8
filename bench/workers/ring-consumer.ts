import { workerData } from 'node:worker_threads'
import { readUtf8 } from '../../src/codec/index.js'
import { RingReader, RingState } from '../../src/ring/index.js'
import { DoneReporter } from '../support/signals.js'

/** What the ring-transport suite hands this worker. */
export interface RingConsumerData {
  ring: SharedArrayBuffer
  signals: SharedArrayBuffer
  /** Records between two release() calls. */
  releaseEvery: number
  /** hasNext() polls before parking. */
  spin: number
  /** waitSync slice in ms. */
  waitMs: number
}

const { ring, signals, releaseEvery, spin, waitMs } = workerData as RingConsumerData
const reader = new RingReader(ring)
const buf = Buffer.from(ring)
const done = new DoneReporter(signals)

// The empty handler the suite measures against.
function handle(_message: string): void {}

let count = 0
let unreleased = 0
for (;;) {
  const at = reader.next()
  if (at >= 0) {
    handle(readUtf8(buf, at, at + reader.length))
    count++
    if (++unreleased === releaseEvery) {
      reader.release()
      unreleased = 0
      done.report(count)
    }
    continue
  }
  // Nothing published: finish the batch so a writer waiting for space or for the count moves on.
  if (unreleased > 0) {
    reader.release()
    unreleased = 0
  }
  done.report(count)
  let ready = false
  for (let i = 0; i < spin && !ready; i++) ready = reader.hasNext()
  if (ready) continue
  if (reader.state !== RingState.OPEN && !reader.hasNext()) break
  reader.waitSync(waitMs)
}
