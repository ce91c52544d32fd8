import { Stat } from '../lane/protocol.js'
import { type ControllerView, type Decision, ThreadController } from '../tune/controller.js'
import { cpuCeiling } from '../tune/cpu-ceiling.js'
import type { Lane } from './lane.js'

/** One measurement window of the thread controller. */
export const WINDOW_MS = 250

/** What the autoscaler reads from and does to its queue. */
export interface AutoscaleHost {
  lanes(): readonly Lane[]
  /** Messages the lanes finished so far: completed, dead-lettered, rejected, aborted. */
  finished(): number
  /** Pushes waiting for room. */
  waiting(): number
  resize(threads: number): Promise<void>
  /** A decision that changes the count (before the resize), or a failed resize. */
  decided(decision: Decision): void
  failed(error: Error): void
}

/**
 * `threads: { min, max }`: every WINDOW_MS, measure a window (completions, per-lane time in
 * handlers from the stats blocks, backlog, the main thread's event-loop utilisation), let the
 * thread controller judge it (pure logic, src/tune/controller.ts), and resize when it says.
 *
 * A window in which the lanes changed (a resize, by the controller or by hand) is not
 * reported: the controller must only see windows that ran one count throughout.
 */
export class Autoscaler {
  readonly controller: ThreadController
  private timer: NodeJS.Timeout | undefined
  private base: Baseline | undefined
  private resizing = false

  constructor(
    range: { min: number; max: number },
    initial: number,
    private readonly host: AutoscaleHost,
  ) {
    this.controller = new ThreadController({
      min: range.min,
      max: range.max,
      initial,
      cpus: cpuCeiling().cpus,
    })
  }

  start(): void {
    this.base = this.baseline()
    // Unref'd: the queue's own timer keeps the process alive while it runs.
    this.timer = setInterval(() => this.tick(), WINDOW_MS).unref()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  view(): ControllerView {
    return this.controller.view()
  }

  log(): readonly Decision[] {
    return this.controller.log()
  }

  private tick(): void {
    const now = this.baseline()
    const base = this.base
    this.base = now
    if (!base || this.resizing || !sameLanes(base.lanes, now.lanes)) return
    const elapsedMs = now.at - base.at
    if (!(elapsedMs > 0)) return
    const busy = now.busyMs.map((ms, i) =>
      Math.min(1, Math.max(0, (ms - base.busyMs[i]) / elapsedMs)),
    )
    const decision = this.controller.observe({
      lanes: now.lanes.length,
      elapsedMs,
      completions: now.finished - base.finished,
      busy,
      backlogStart: base.backlog,
      backlogEnd: now.backlog,
      mainUtilisation: performance.eventLoopUtilization(now.elu, base.elu).utilization,
    })
    if (decision.lanes === now.lanes.length) return
    this.host.decided(decision)
    this.resizing = true
    this.host
      .resize(decision.lanes)
      .catch((err: Error) => this.host.failed(err))
      .finally(() => {
        this.resizing = false
        // The window that saw the resize is not a clean one: measure from here.
        this.base = this.baseline()
      })
  }

  private baseline(): Baseline {
    const lanes = this.host.lanes()
    let backlog = this.host.waiting()
    for (const lane of lanes) backlog += lane.outstanding
    return {
      at: performance.now(),
      lanes,
      busyMs: lanes.map((lane) => lane.statSlots[Stat.BUSY_MS]),
      finished: this.host.finished(),
      backlog,
      elu: performance.eventLoopUtilization(),
    }
  }
}

interface Baseline {
  at: number
  lanes: readonly Lane[]
  busyMs: number[]
  finished: number
  backlog: number
  elu: ReturnType<typeof performance.eventLoopUtilization>
}

function sameLanes(a: readonly Lane[], b: readonly Lane[]): boolean {
  return a.length === b.length && a.every((lane, i) => lane === b[i])
}
