import type { Queue } from '../queue/queue.js'

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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Runs producer loops into `queue` until it stops or `signal` aborts. Each produced message
 * is pushed (so a loop runs at the rate the lanes take messages); while the queue signals
 * 'pause', loops stop calling produce() and the producers' onProducerPause/Resume are called.
 */
export async function runProducers<T>(
  queue: Queue,
  factory: ProducerFactory<T>,
  options: ProduceOptions = {},
): Promise<{ produced: number }> {
  const count = options.producers ?? 1
  const idleMs = options.idleMs ?? 10
  const producers = await Promise.all(Array.from({ length: count }, () => factory()))
  let paused = queue.isPaused
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
  queue.on('pause', onPause)
  queue.on('resume', onResume)
  let produced = 0
  const running = () => !options.signal?.aborted && queue.accepting
  try {
    await Promise.all(
      producers.map(async (producer) => {
        while (running()) {
          if (paused) {
            await Promise.race([resumed, sleep(idleMs)])
            continue
          }
          const message = await producer.produce()
          if (message === undefined) {
            await sleep(idleMs)
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
      }),
    )
  } finally {
    queue.off('pause', onPause)
    queue.off('resume', onResume)
    wake()
  }
  return { produced }
}
