import { workerData } from 'node:worker_threads'
import { RingBuffer } from 'ringbuf.js'
import { DoneReporter, SIG } from '../support/signals.js'

/** What the ring-transport suite hands this worker. */
export interface RingbufConsumerData {
  ring: SharedArrayBuffer
  signals: SharedArrayBuffer
  spin: number
  waitMs: number
}

const { ring, signals, spin, waitMs } = workerData as RingbufConsumerData
const rb = new RingBuffer(ring, Uint8Array)
const sig = new Int32Array(signals)
const done = new DoneReporter(signals)
// ringbuf.js is a byte FIFO: main pushes whole batches of [u32 length LE | utf8 bytes] frames,
// so popping everything available always yields whole frames.
const scratch = Buffer.alloc(rb.capacity())

function handle(_message: string): void {}

let count = 0
for (;;) {
  const n = rb.pop(scratch)
  if (n > 0) {
    // Space freed: wake main if it waits for room.
    Atomics.add(sig, SIG.FREED, 1)
    if (Atomics.load(sig, SIG.WATCHED) !== 0) {
      Atomics.store(sig, SIG.WATCHED, 0)
      Atomics.notify(sig, SIG.FREED)
    }
    let p = 0
    while (p < n) {
      const len = scratch.readUInt32LE(p)
      handle(scratch.toString('utf8', p + 4, p + 4 + len))
      p += 4 + len
      count++
    }
    done.report(count)
    continue
  }
  let ready = false
  for (let i = 0; i < spin && !ready; i++) ready = !rb.empty()
  if (ready) continue
  // Park on the doorbell: announce, read SEQ, re-check, then wait only if SEQ is unchanged.
  Atomics.store(sig, SIG.SLEEPING, 1)
  const seq = Atomics.load(sig, SIG.SEQ)
  if (rb.empty()) {
    if (Atomics.load(sig, SIG.STOP) !== 0) break
    Atomics.wait(sig, SIG.SEQ, seq, waitMs)
  }
  Atomics.store(sig, SIG.SLEEPING, 0)
}
