import { once } from 'node:events'
import { Piscina } from 'piscina'
import { RingBuffer } from 'ringbuf.js'
import ThreadStream from 'thread-stream'
import { writeUtf8 } from '../../src/codec/index.js'
import { createRingBuffer, RingWriter } from '../../src/ring/index.js'
import type { BenchContext, Case, Suite } from '../harness.js'
import { asciiMessages } from '../support/messages.js'
import { createSignals, DoneCounter, SIG, StallGuard } from '../support/signals.js'
import { WorkerHandle } from '../support/worker-handle.js'
import type { RingConsumerData } from '../workers/ring-consumer.js'
import type { RingbufConsumerData } from '../workers/ringbuf-consumer.js'

/**
 * 1 producer (main thread) -> 1 worker. Each message is a 256-byte ASCII string, encoded on the
 * main thread and decoded back into a JS string in the worker, whose handler is empty. A sample
 * moves a fixed batch and ends when the worker confirmed it consumed all of it.
 */
const MESSAGE_BYTES = 256
/** Distinct strings cycled through (a power of two). */
const POOL = 64
/** Bytes of the conveyor ring and of the ringbuf.js ring. */
const RING_BYTES = 256 * 1024
/** Records the producer commits between two publish() calls (and frames per ringbuf.js push). */
const PUBLISH_EVERY = 64
/** Records the conveyor worker reads between two release() calls. */
const RELEASE_EVERY = 64
/** Messages per Piscina run() in the batched case. */
const PISCINA_BATCH = 256
/** Consumer idle policy: hasNext() polls, then a blocking wait of this many ms. */
const SPIN = 256
const WAIT_MS = 50

const workerUrl = (file: string) => new URL(`../workers/${file}`, import.meta.url)

/** Messages per sample, sized so one sample takes roughly 50-200 ms (quick: a few ms to ~50). */
export function ringTransportSizes(quick: boolean) {
  return quick
    ? { fast: 50_000, piscinaPerMessage: 2_000, piscinaBatched: 51_200, threadStream: 50_000 }
    : {
        fast: 200_000,
        piscinaPerMessage: 5_000,
        piscinaBatched: 204_800,
        threadStream: 100_000,
      }
}

/**
 * conveyor's ring alone, no queue: also the queue suite's reference for its noop case. It
 * encodes and decodes with the lanes' own UTF-8 helpers (src/codec/utf8.ts), so that a ratio to
 * it measures what the queue adds, not a difference in string handling.
 */
export function conveyorRing(messages: string[], perSample: number): Case {
  let handle: WorkerHandle | undefined
  let writer: RingWriter | undefined
  let buf: Buffer
  let counter: DoneCounter
  const maxBytes = MESSAGE_BYTES * 3
  return {
    name: `conveyor ring (${RING_BYTES / 1024} KiB)`,
    conveyor: true,
    setup() {
      const ring = createRingBuffer(RING_BYTES)
      const signals = createSignals()
      writer = new RingWriter(ring)
      buf = Buffer.from(ring)
      counter = new DoneCounter(signals)
      const workerData: RingConsumerData = {
        ring,
        signals,
        releaseEvery: RELEASE_EVERY,
        spin: SPIN,
        waitMs: WAIT_MS,
      }
      handle = new WorkerHandle(workerUrl('ring-consumer.js'), { workerData })
    },
    async run() {
      const w = writer!
      const target = counter.expect(perSample)
      const stall = new StallGuard('conveyor ring: the reader released nothing')
      for (let i = 0; i < perSample; ) {
        const at = w.reserve(maxBytes)
        if (at < 0) {
          w.publish()
          const seen = w.released
          if (!w.hasRoom(maxBytes)) {
            handle!.check()
            stall.waiting(seen)
            await w.waitForRelease(seen, 250)
          }
          continue
        }
        w.commit(writeUtf8(buf, messages[i & (POOL - 1)], at, maxBytes), 0)
        if (++i % PUBLISH_EVERY === 0) w.publish()
      }
      w.publish()
      await counter.reached(target, () => handle!.check())
      return perSample
    },
    async teardown() {
      await handle?.stop(() => writer!.close())
    },
  }
}

function piscinaPerMessage(messages: string[], perSample: number): Case {
  let pool: Piscina | undefined
  return {
    name: 'piscina run() per message',
    async setup() {
      pool = new Piscina({
        filename: workerUrl('piscina-consumer.js').href,
        minThreads: 1,
        maxThreads: 1,
        concurrentTasksPerWorker: 1,
      })
      await pool.run(messages[0])
    },
    async run() {
      const p = pool!
      const runs: Promise<number>[] = new Array(perSample)
      for (let i = 0; i < perSample; i++) runs[i] = p.run(messages[i & (POOL - 1)])
      let moved = 0
      for (const n of await Promise.all(runs)) moved += n
      return moved
    },
    async teardown() {
      await pool?.destroy()
    },
  }
}

function piscinaBatched(messages: string[], perSample: number): Case {
  let pool: Piscina | undefined
  return {
    name: `piscina run() batch ${PISCINA_BATCH}`,
    async setup() {
      pool = new Piscina({
        filename: workerUrl('piscina-consumer.js').href,
        minThreads: 1,
        maxThreads: 1,
        concurrentTasksPerWorker: 1,
      })
      await pool.run([messages[0]])
    },
    async run() {
      const p = pool!
      const runs: Promise<number>[] = []
      for (let i = 0; i < perSample; ) {
        const n = Math.min(PISCINA_BATCH, perSample - i)
        const batch: string[] = new Array(n)
        for (let j = 0; j < n; j++, i++) batch[j] = messages[i & (POOL - 1)]
        runs.push(p.run(batch))
      }
      let moved = 0
      for (const n of await Promise.all(runs)) moved += n
      return moved
    },
    async teardown() {
      await pool?.destroy()
    },
  }
}

function threadStream(messages: string[], perSample: number): Case {
  let stream: ThreadStream | undefined
  let counter: DoneCounter
  let failure: Error | undefined
  // thread-stream moves a byte stream, not messages: frame each with '\n' (257 bytes on the wire).
  const lines = messages.map((m) => `${m}\n`)
  const check = () => {
    if (failure) throw failure
  }
  return {
    name: 'thread-stream (pino transport)',
    async setup() {
      const signals = createSignals()
      counter = new DoneCounter(signals)
      stream = new ThreadStream({
        filename: workerUrl('thread-stream-consumer.js').href,
        workerData: { signals },
        sync: false,
      })
      stream.on('error', (err: Error) => {
        failure ??= err
      })
      await once(stream, 'ready')
    },
    async run() {
      const s = stream!
      const target = counter.expect(perSample)
      for (let i = 0; i < perSample; i++) {
        if (!s.write(lines[i & (POOL - 1)])) {
          check()
          await once(s, 'drain')
        }
      }
      await counter.reached(target, check)
      return perSample
    },
    async teardown() {
      const s = stream
      if (!s) return
      const worker = (s as unknown as { worker: { terminate(): Promise<number> } }).worker
      const closed = once(s, 'close').catch(() => undefined)
      try {
        // end() flushes synchronously and waits for the worker's destination to finish.
        s.end()
      } catch {
        await worker.terminate()
      }
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(resolve, 2000, 'late')
      })
      if ((await Promise.race([closed, late])) === 'late') await worker.terminate()
      clearTimeout(timer)
    },
  }
}

function ringbufJs(messages: string[], perSample: number): Case {
  let handle: WorkerHandle | undefined
  let rb: RingBuffer
  let sig: Int32Array
  let counter: DoneCounter
  // One batch of frames is built here, then pushed with a single push() (one store of the
  // write pointer), mirroring conveyor's publish-per-batch.
  const scratch = Buffer.alloc(PUBLISH_EVERY * (4 + MESSAGE_BYTES * 3))
  const push = async (bytes: number) => {
    const stall = new StallGuard('ringbuf.js: the reader freed nothing')
    while (rb.availableWrite() < bytes) {
      const freed = Atomics.load(sig, SIG.FREED)
      Atomics.store(sig, SIG.WATCHED, 1)
      if (rb.availableWrite() >= bytes) break
      handle!.check()
      stall.waiting(freed)
      const wait = Atomics.waitAsync(sig, SIG.FREED, freed, 250)
      if (wait.async) await wait.value
    }
    rb.push(scratch, bytes)
    Atomics.add(sig, SIG.SEQ, 1)
    if (Atomics.load(sig, SIG.SLEEPING) !== 0) Atomics.notify(sig, SIG.SEQ)
  }
  return {
    name: `ringbuf.js bytes (${RING_BYTES / 1024} KiB)`,
    setup() {
      const ring = RingBuffer.getStorageForCapacity(RING_BYTES, Uint8Array)
      const signals = createSignals()
      rb = new RingBuffer(ring, Uint8Array)
      sig = new Int32Array(signals)
      counter = new DoneCounter(signals)
      const workerData: RingbufConsumerData = { ring, signals, spin: SPIN, waitMs: WAIT_MS }
      handle = new WorkerHandle(workerUrl('ringbuf-consumer.js'), { workerData })
    },
    async run() {
      const target = counter.expect(perSample)
      let p = 0
      for (let i = 0; i < perSample; ) {
        const n = scratch.write(messages[i & (POOL - 1)], p + 4, 'utf8')
        scratch.writeUInt32LE(n, p)
        p += 4 + n
        if (++i % PUBLISH_EVERY === 0) {
          await push(p)
          p = 0
        }
      }
      if (p > 0) await push(p)
      await counter.reached(target, () => handle!.check())
      return perSample
    },
    async teardown() {
      await handle?.stop(() => {
        Atomics.store(sig, SIG.STOP, 1)
        Atomics.add(sig, SIG.SEQ, 1)
        Atomics.notify(sig, SIG.SEQ)
      })
    },
  }
}

export const ringTransport: Suite = {
  name: 'ring transport',
  description:
    '1 producer (main) -> 1 worker, 256-byte ASCII strings encoded on main, decoded to a JS string in the worker, empty handler',
  cases({ quick }: BenchContext): Case[] {
    const messages = asciiMessages(POOL, MESSAGE_BYTES)
    const n = ringTransportSizes(quick)
    return [
      conveyorRing(messages, n.fast),
      piscinaPerMessage(messages, n.piscinaPerMessage),
      piscinaBatched(messages, n.piscinaBatched),
      threadStream(messages, n.threadStream),
      ringbufJs(messages, n.fast),
    ]
  },
}
