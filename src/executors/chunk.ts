import { countOption, functionOption, invalid, optionsObject } from '../check-options.js'
import { ConveyorError, describeValue } from '../errors.js'
import {
  type BatchContainer,
  type ExecuteBatch,
  PERIODICAL_OPTIONS,
  PeriodicalExecutor,
  type PeriodicalOptions,
  periodicalOptions,
} from './periodical.js'

export interface ChunkOptions<T> extends PeriodicalOptions<T> {
  /** A batch executes as soon as its items measure at least this many bytes. @default 1 MiB */
  maxBytes?: number
  /**
   * An item's size in bytes (a finite number ≥ 0). Without it, strings are measured with
   * Buffer.byteLength (UTF-8) and typed arrays / DataViews by byteLength; other items are refused.
   */
  sizeOf?: (item: T) => number
}

const LABEL = 'ChunkExecutor'

function byteSize(item: unknown): number {
  if (typeof item === 'string') return Buffer.byteLength(item)
  if (ArrayBuffer.isView(item)) return item.byteLength
  throw invalid(
    LABEL,
    `add() got ${describeValue(item)}, which has no byte size; give a sizeOf(item) option, or add strings or Uint8Arrays`,
  )
}

class ChunkContainer<T> implements BatchContainer<T> {
  #items: T[] = []
  #bytes = 0
  /** Sizes of validated items not yet added, in order (validate() runs before add()). */
  #measured: number[] = []

  constructor(
    private readonly maxBytes: number,
    private readonly sizeOf: ((item: T) => number) | undefined,
  ) {}

  validate(item: T): void {
    const size = this.sizeOf === undefined ? byteSize(item) : this.sizeOf(item)
    if (typeof size !== 'number' || !Number.isFinite(size) || size < 0) {
      throw new ConveyorError(
        'INVALID_OPTION',
        `${LABEL}: sizeOf(item) must return a finite number of bytes ≥ 0, got ${describeValue(size)}`,
      )
    }
    this.#measured.push(size)
  }

  add(item: T): boolean {
    this.#items.push(item)
    this.#bytes += this.#measured.shift() ?? 0
    return this.#bytes >= this.maxBytes
  }

  take(): T[] {
    const items = this.#items
    this.#items = []
    this.#bytes = 0
    return items
  }

  get size(): number {
    return this.#items.length
  }
}

/**
 * go-zero's ChunkExecutor: a batch executes once its items measure `maxBytes`, or
 * `intervalMs` after its first item. An item larger than maxBytes is a batch of its own.
 */
export class ChunkExecutor<T = string | Uint8Array> extends PeriodicalExecutor<T> {
  readonly maxBytes: number

  constructor(execute: ExecuteBatch<T>, options?: ChunkOptions<T>) {
    const o = optionsObject(LABEL, options, ['maxBytes', 'sizeOf', ...PERIODICAL_OPTIONS])
    const maxBytes = countOption(LABEL, 'maxBytes', o.maxBytes, 1024 * 1024)
    const sizeOf = functionOption<(item: T) => number>(LABEL, 'sizeOf', o.sizeOf)
    super(new ChunkContainer<T>(maxBytes, sizeOf), execute, periodicalOptions(options), LABEL)
    this.maxBytes = maxBytes
  }
}
