/**
 * Sizes a throughput case's samples by time instead of by count: each sample's message count is
 * scaled from the previous one so that a sample takes about `targetMs`. The warm-up samples
 * find the size, so the same suite code gives ~targetMs samples on any machine and for any
 * handler cost (an inline loop moves 10^8 msg/s, Piscina run() per message 10^4).
 */
export class SampleSize {
  private n: number

  constructor(
    private readonly targetMs: number,
    /** Counts are whole multiples of this (a batch size), and at least one of them. */
    private readonly multiple = 256,
    initial = 256,
    private readonly max = 50_000_000,
  ) {
    this.n = this.round(initial)
  }

  /** Messages the next sample should move. */
  get next(): number {
    return this.n
  }

  /** Scales the next sample's count from how long `moved` messages took. */
  observe(moved: number, ms: number): void {
    // Below a millisecond the timer and the fixed costs dominate: grow fast, don't extrapolate.
    const scale = ms < 1 ? 100 : Math.min(1000, this.targetMs / ms)
    this.n = this.round(moved * scale)
  }

  private round(n: number): number {
    const m = this.multiple
    return Math.min(this.max, Math.max(m, Math.ceil(n / m) * m))
  }
}
