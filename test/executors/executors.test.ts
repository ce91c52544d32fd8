import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  BulkExecutor,
  ChunkExecutor,
  ExecuteError,
  isConveyorError,
} from '../../src/executors/index.js'

/** A deferred: an execute() that finishes when the test says so. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

let warnings: string[] = []
const onWarning = (w: Error): void => {
  warnings.push(w.message)
}
beforeEach(() => {
  warnings = []
  process.on('warning', onWarning)
})
afterEach(() => {
  process.off('warning', onWarning)
  vi.useRealTimers()
})

/** Lets queued microtasks and process warnings run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('BulkExecutor', () => {
  it('executes a batch at maxItems, in order, and flush() executes the rest', async () => {
    const batches: number[][] = []
    const ex = new BulkExecutor<number>((b) => void batches.push(b), { maxItems: 3 })
    for (let i = 0; i < 7; i++) await ex.add(i)
    await settle()
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ])
    expect(ex.pending).toBe(1)
    await ex.flush()
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]])
    expect(ex.pending).toBe(0)
    await ex.close()
  })

  it('executes on the interval (fake timers), and the timer is armed only while items wait', async () => {
    vi.useFakeTimers()
    const batches: string[][] = []
    const ex = new BulkExecutor<string>((b) => void batches.push(b), {
      maxItems: 100,
      intervalMs: 50,
    })
    expect(vi.getTimerCount()).toBe(0)
    await ex.add('a')
    await ex.add('b')
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(49)
    expect(batches).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(batches).toEqual([['a', 'b']])
    expect(vi.getTimerCount()).toBe(0)
    await ex.add('c')
    const waited = ex.wait()
    await vi.advanceTimersByTimeAsync(50)
    await waited
    expect(batches).toEqual([['a', 'b'], ['c']])
    await ex.close()
  })

  it('runs one execution at a time; a full batch waits behind it, further adds wait (in order)', async () => {
    const gates = [gate(), gate(), gate()]
    const started: number[][] = []
    let inFlight = 0
    let maxInFlight = 0
    const ex = new BulkExecutor<number>(
      async (b) => {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        started.push(b)
        await gates[started.length - 1].promise
        inFlight--
      },
      { maxItems: 2 },
    )
    await ex.add(1)
    await ex.add(2) // batch [1,2] executes
    await ex.add(3)
    await ex.add(4) // [3,4] sealed, waits behind
    let accepted5 = false
    const add5 = ex.add(5).then(() => {
      accepted5 = true
    })
    const add6 = ex.add(6)
    await settle()
    expect(accepted5).toBe(false)
    expect(ex.pending).toBe(6)
    expect(started).toEqual([[1, 2]])
    gates[0].open()
    await add5
    await add6
    expect(started).toEqual([
      [1, 2],
      [3, 4],
    ])
    gates[1].open()
    gates[2].open()
    await ex.wait()
    expect(started).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ])
    expect(maxInFlight).toBe(1)
    await ex.close()
  })

  it('flush() resolves only after in-flight and held items executed', async () => {
    const g = gate()
    const done: number[] = []
    const ex = new BulkExecutor<number>(
      async (b) => {
        if (b[0] === 0) await g.promise
        done.push(...b)
      },
      { maxItems: 2 },
    )
    const adds = [0, 1, 2, 3, 4, 5, 6].map((i) => ex.add(i))
    let flushed = false
    const f = ex.flush().then(() => {
      flushed = true
    })
    await settle()
    expect(flushed).toBe(false)
    g.open()
    await f
    await Promise.all(adds)
    expect(done).toEqual([0, 1, 2, 3, 4, 5, 6])
    await ex.close()
  })

  it('close() executes the rest, held adds included; add() after close rejects EXECUTOR_CLOSED', async () => {
    const g = gate()
    const done: number[] = []
    const ex = new BulkExecutor<number>(
      async (b) => {
        await g.promise
        done.push(...b)
      },
      { maxItems: 1 },
    )
    const adds = [1, 2, 3, 4].map((i) => ex.add(i))
    const closing = ex.close()
    expect(ex.closed).toBe(true)
    expect(ex.close()).toBe(closing)
    const late = ex.add(5)
    await expect(late).rejects.toSatisfy((e: unknown) => isConveyorError(e, 'EXECUTOR_CLOSED'))
    g.open()
    await closing
    await Promise.all(adds)
    expect(done).toEqual([1, 2, 3, 4])
  })

  it('Symbol.asyncDispose closes', async () => {
    const done: number[] = []
    {
      await using ex = new BulkExecutor<number>((b) => void done.push(...b))
      await ex.add(1)
      await ex.add(2)
    }
    expect(done).toEqual([1, 2])
  })

  it('reports a failed batch to onError with its items, and goes on', async () => {
    const failed: Array<[string, number[]]> = []
    const done: number[][] = []
    const ex = new BulkExecutor<number>(
      (b) => {
        if (b.includes(3)) throw new Error('disk full')
        done.push(b)
      },
      { maxItems: 2, onError: (err, batch) => void failed.push([err.message, batch]) },
    )
    for (let i = 1; i <= 6; i++) await ex.add(i)
    await ex.close()
    expect(failed).toEqual([['disk full', [3, 4]]])
    expect(done).toEqual([
      [1, 2],
      [5, 6],
    ])
  })

  it('an onError that throws (or rejects) becomes a process warning; the executor goes on', async () => {
    const done: number[][] = []
    let calls = 0
    const ex = new BulkExecutor<number>(
      (b) => {
        if (b[0] % 2 === 1) throw new Error('odd')
        done.push(b)
      },
      {
        maxItems: 1,
        onError: (): Promise<void> | undefined => {
          calls++
          if (calls === 1) throw new Error('listener broke')
          return Promise.reject(new Error('listener rejected'))
        },
      },
    )
    for (let i = 1; i <= 4; i++) await ex.add(i)
    await ex.close()
    await settle()
    expect(done).toEqual([[2], [4]])
    expect(calls).toBe(2)
    expect(warnings.some((w) => w.includes('listener broke'))).toBe(true)
    expect(warnings.some((w) => w.includes('listener rejected'))).toBe(true)
  })

  it('without onError: a warning, and the next flush()/close() rejects with ExecuteError (its batch)', async () => {
    const ex = new BulkExecutor<number>(
      async (b) => {
        if (b[0] < 3) throw new Error(`bad ${b[0]}`)
      },
      { maxItems: 1 },
    )
    await ex.add(1)
    const err = await ex.flush().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ExecuteError)
    expect((err as ExecuteError<number>).batch).toEqual([1])
    expect((err as ExecuteError<number>).code).toBe('EXECUTE_FAILED')
    expect(((err as Error).cause as Error).message).toBe('bad 1')
    await ex.flush() // claimed once
    await ex.add(2)
    await ex.add(0)
    await ex.add(3)
    const agg = await ex.close().catch((e: unknown) => e)
    expect(agg).toBeInstanceOf(AggregateError)
    expect((agg as AggregateError).errors.map((e: ExecuteError<number>) => e.batch)).toEqual([
      [2],
      [0],
    ])
    await settle()
    expect(warnings.filter((w) => w.includes('execute() failed'))).toHaveLength(3)
  })

  it('fails a batch whose execute() hangs past executeTimeoutMs (fake timers), and goes on', async () => {
    vi.useFakeTimers()
    const hung = gate()
    const started: number[][] = []
    const failed: { code: string | undefined; batch: number[] }[] = []
    const ex = new BulkExecutor<number>(
      (b) => {
        started.push(b)
        // The first batch never answers (until the test opens it, long after its timeout).
        return b[0] === 0 ? hung.promise : undefined
      },
      {
        maxItems: 2,
        executeTimeoutMs: 1000,
        onError: (error, batch) => {
          failed.push({ code: (error as { code?: string }).code, batch })
        },
      },
    )
    for (let i = 0; i < 4; i++) void ex.add(i)
    const closed = ex.close()
    await vi.advanceTimersByTimeAsync(999)
    expect(started).toEqual([[0, 1]])
    expect(failed).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(failed).toEqual([{ code: 'EXECUTE_TIMEOUT', batch: [0, 1] }])
    expect(started).toEqual([
      [0, 1],
      [2, 3],
    ])
    await closed // bounded: it did not wait for the hung write
    expect(ex.pending).toBe(0)
    // Its late answer changes nothing: no second report, nothing counted twice.
    hung.open()
    await vi.advanceTimersByTimeAsync(0)
    expect(failed).toHaveLength(1)
    expect(ex.pending).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('without onError, a timed-out batch makes close() reject with its items', async () => {
    vi.useFakeTimers()
    const ex = new ChunkExecutor<string>(() => new Promise<void>(() => {}), {
      executeTimeoutMs: 50,
    })
    await ex.add('lost?')
    const closing = ex.close().catch((e: unknown) => e)
    await vi.advanceTimersByTimeAsync(50)
    const err = (await closing) as ExecuteError<string>
    expect(err).toBeInstanceOf(ExecuteError)
    expect(err.batch).toEqual(['lost?'])
    expect(isConveyorError(err.cause, 'EXECUTE_TIMEOUT')).toBe(true)
    expect((err.cause as Error).message).toContain('executeTimeoutMs')
  })

  it('validates options with messages that say what to change', () => {
    const run = (): void => undefined
    const bad: Array<[() => unknown, RegExp]> = [
      [() => new BulkExecutor(run, { maxItems: 0 }), /maxItems must be an integer ≥ 1, got 0/],
      [() => new BulkExecutor(run, { maxItems: 1.5 }), /maxItems/],
      [() => new BulkExecutor(run, { intervalMs: -1 }), /intervalMs must be/],
      [() => new BulkExecutor(run, { intervalMs: Number.NaN }), /intervalMs/],
      [() => new BulkExecutor(run, { onError: 'x' as never }), /onError must be a function/],
      [() => new BulkExecutor(run, { maxitems: 3 } as never), /unknown option 'maxitems'/],
      [() => new BulkExecutor(run, 5 as never), /options must be an object/],
      [() => new BulkExecutor('x' as never), /execute must be a function/],
      [() => new ChunkExecutor(run, { maxBytes: -2 }), /maxBytes must be an integer ≥ 1/],
      [() => new ChunkExecutor(run, { sizeOf: 1 as never }), /sizeOf must be a function/],
      [() => new BulkExecutor(run, { executeTimeoutMs: 0 }), /executeTimeoutMs must be/],
      [() => new ChunkExecutor(run, { executeTimeoutMs: Infinity }), /executeTimeoutMs must be/],
      [() => new BulkExecutor(run, { executeTimeoutMs: '5' as never }), /executeTimeoutMs/],
    ]
    for (const [make, message] of bad) {
      let thrown: unknown
      try {
        make()
      } catch (e) {
        thrown = e
      }
      expect(isConveyorError(thrown, 'INVALID_OPTION'), String(message)).toBe(true)
      expect((thrown as Error).message).toMatch(message)
    }
  })
})

describe('ChunkExecutor', () => {
  it('executes at maxBytes measured with Buffer.byteLength / byteLength', async () => {
    const batches: Array<Array<string | Uint8Array>> = []
    const ex = new ChunkExecutor((b) => void batches.push(b), { maxBytes: 6 })
    await ex.add('ab') // 2
    await ex.add('é') // 2 bytes in UTF-8 → 4
    await ex.add(new Uint8Array(1)) // 5
    await settle()
    expect(batches).toHaveLength(0)
    await ex.add('x') // 6 → full
    await settle()
    expect(batches).toHaveLength(1)
    expect(batches[0]).toHaveLength(4)
    await ex.add('0123456789') // larger than maxBytes: a batch of its own
    await settle()
    expect(batches[1]).toEqual(['0123456789'])
    await ex.close()
  })

  it('uses sizeOf, refuses unmeasurable items and bad sizes without losing order', async () => {
    const batches: Array<Array<{ n: number }>> = []
    const ex = new ChunkExecutor<{ n: number }>((b) => void batches.push(b), {
      maxBytes: 10,
      sizeOf: (item) => (item.n < 0 ? Number.NaN : item.n),
    })
    await ex.add({ n: 4 })
    await expect(ex.add({ n: -1 })).rejects.toThrow(/sizeOf\(item\) must return/)
    await ex.add({ n: 6 })
    await settle()
    expect(batches).toEqual([[{ n: 4 }, { n: 6 }]])
    await ex.close()
    const plain = new ChunkExecutor<unknown>(() => undefined)
    await expect(plain.add({})).rejects.toThrow(/give a sizeOf\(item\) option/)
    await plain.close()
  })

  it('executes on the interval (fake timers)', async () => {
    vi.useFakeTimers()
    const batches: string[][] = []
    const ex = new ChunkExecutor<string>((b) => void batches.push(b), {
      maxBytes: 1000,
      intervalMs: 10,
    })
    await ex.add('a')
    await vi.advanceTimersByTimeAsync(10)
    expect(batches).toEqual([['a']])
    await ex.close()
  })
})
