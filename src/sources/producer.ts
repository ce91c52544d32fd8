import type { Queue } from '../queue/queue.js'
import { sleep } from '../sleep.js'

/**
 * go-zero's producer shape: `produce()` returns a message, or nothing when it has none right
 * now. The listeners hear when the queue wants producers to hold off (lanes past the high
 * watermark, or queue.pause()) and when they may go on.
 */
export interface Producer<T = unknown> {
  produce(): T | undefined | Promise<T | undefined>
  onProducerPause?(): void
  onProducerResume?(): void
  /** A produced message the queue refused (it was stopping): put it back where it came from. */
  refused?(message: T, error: Error): void
}

export type ProducerFactory<T = unknown> = () => Producer<T> | Promise<Producer<T>>

export interface ProduceOptions {
  /** Producer loops to run, each with its own producer from the factory. Default 1. */
  producers?: number
  /** How long a loop sleeps after produce() returned nothing. Default 10 ms. */
  idleMs?: number
  /** Ends the loops. Default: they run until the queue stops. */
  signal?: AbortSignal
}

/**
 * Runs producer loops into `queue` until it stops, `signal` aborts, or one loop fails. Each
 * produced message is pushed (so a loop runs at the rate the lanes take messages, and gives
 * the event loop a turn at a bounded interval: see queue/turns.ts); while the queue is paused
 * (pause() or backlog past the high watermark), loops stop calling produce(), and the
 * producers' onProducerPause/Resume hear of it. When one loop fails, the others are stopped
 * before the returned promise rejects with that failure.
 */
export async function runProducers<T>(
  queue: Queue<T, unknown>,
  factory: ProducerFactory<T>,
  options: ProduceOptions = {},
): Promise<{ produced: number }> {
  const count = options.producers ?? 1
  const idleMs = options.idleMs ?? 10
  // Ends every loop: the caller's signal, the queue stopping, or one loop failing.
  const end = new AbortController()
  const endAll = () => end.abort()
  options.signal?.addEventListener('abort', endAll, { once: true })
  if (options.signal?.aborted) endAll()
  const producers = await Promise.all(Array.from({ length: count }, () => factory()))
  let paused = false
  let resumed: Promise<void> = Promise.resolve()
  let wake = () => {}
  const onPause = () => {
    if (paused) return
    paused = true
    resumed = new Promise((resolve) => {
      wake = resolve
    })
    for (const p of producers) p.onProducerPause?.()
  }
  const onResume = () => {
    if (!paused) return
    paused = false
    wake()
    for (const p of producers) p.onProducerResume?.()
  }
  // A queue paused before the loops start waits like one paused later.
  if (queue.isPaused) onPause()
  queue.on('pause', onPause)
  queue.on('resume', onResume)
  let produced = 0
  const running = () => !end.signal.aborted && queue.accepting
  const loop = async (producer: Producer<T>): Promise<void> => {
    while (running()) {
      if (paused) {
        await Promise.race([resumed, sleep(idleMs, end.signal)])
        continue
      }
      const message = await producer.produce()
      if (message === undefined) {
        await sleep(idleMs, end.signal)
        continue
      }
      try {
        await queue.push(message)
        produced++
      } catch (err) {
        producer.refused?.(message, err as Error)
        if (!queue.accepting) return
        throw err
      }
    }
  }
  let failure: { error: unknown } | undefined
  try {
    await Promise.all(
      producers.map((producer) =>
        loop(producer).catch((error) => {
          failure ??= { error }
          endAll()
        }),
      ),
    )
  } finally {
    queue.off('pause', onPause)
    queue.off('resume', onResume)
    options.signal?.removeEventListener('abort', endAll)
    wake()
  }
  if (failure) throw failure.error
  return { produced }
}
