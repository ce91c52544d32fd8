import { countOption, optionsObject } from '../check-options.js'
import {
  type BatchContainer,
  type ExecuteBatch,
  PERIODICAL_OPTIONS,
  PeriodicalExecutor,
  type PeriodicalOptions,
  periodicalOptions,
} from './periodical.js'

export interface BulkOptions<T> extends PeriodicalOptions<T> {
  /** A batch executes as soon as it holds this many items. @default 1000 */
  maxItems?: number
}

class BulkContainer<T> implements BatchContainer<T> {
  #items: T[] = []

  constructor(private readonly maxItems: number) {}

  add(item: T): boolean {
    this.#items.push(item)
    return this.#items.length >= this.maxItems
  }

  take(): T[] {
    const items = this.#items
    this.#items = []
    return items
  }

  get size(): number {
    return this.#items.length
  }
}

/** go-zero's BulkExecutor: a batch executes at `maxItems` items, or `intervalMs` after its first. */
export class BulkExecutor<T> extends PeriodicalExecutor<T> {
  readonly maxItems: number

  constructor(execute: ExecuteBatch<T>, options?: BulkOptions<T>) {
    const label = 'BulkExecutor'
    const o = optionsObject(label, options, ['maxItems', ...PERIODICAL_OPTIONS])
    const maxItems = countOption(label, 'maxItems', o.maxItems, 1000)
    super(new BulkContainer<T>(maxItems), execute, periodicalOptions(options), label)
    this.maxItems = maxItems
  }
}
