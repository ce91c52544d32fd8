import type { EventFence, PauseInfo } from './events.js'

/**
 * When sources should hold off: the user paused the queue, or the lanes are filling up.
 *
 * Backlog pressure has hysteresis: 'pause' fires once the lanes' fill reaches `high`, and
 * 'resume' only once it falls to `low`, so a source is not toggled on every message. A user
 * pause also holds pushes (they wait); backlog pressure only informs, since lanes that are
 * truly full already make pushes wait.
 */
export class Backpressure {
  private userPaused = false
  private pressured = false

  constructor(
    private readonly high: number,
    private readonly low: number,
    /** Share of the lanes' bytes in use now, 0..1. */
    private readonly fill: () => number,
    private readonly events: EventFence,
  ) {}

  /** Whether pushes must wait (pause() was called). */
  get paused(): boolean {
    return this.userPaused
  }

  /** Whether 'pause' for backlog fired and 'resume' did not yet. */
  get underPressure(): boolean {
    return this.pressured
  }

  pause(): void {
    if (this.userPaused) return
    this.userPaused = true
    this.events.emit('pause', this.info('user'))
  }

  /** False when the queue was not paused. */
  resume(): boolean {
    if (!this.userPaused) return false
    this.userPaused = false
    this.events.emit('resume', this.info('user'))
    return true
  }

  /** Re-reads the fill; pushes waiting for room mean the lanes are as full as they get. */
  check(waiting: number): void {
    const fill = waiting > 0 ? 1 : this.fill()
    if (!this.pressured && fill >= this.high) {
      this.pressured = true
      this.events.emit('pause', { reason: 'backlog', fill })
    } else if (this.pressured && fill <= this.low) {
      this.pressured = false
      this.events.emit('resume', { reason: 'backlog', fill })
    }
  }

  private info(reason: PauseInfo['reason']): PauseInfo {
    return { reason, fill: this.fill() }
  }
}
