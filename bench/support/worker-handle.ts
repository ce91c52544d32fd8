import { once } from 'node:events'
import { Worker, type WorkerOptions } from 'node:worker_threads'

/**
 * A bench worker with its failure tracked: `check()` throws once it errored or exited early,
 * and `stop()` asks it to finish, then terminates it if it does not within the grace period.
 */
export class WorkerHandle {
  readonly worker: Worker
  private failure: Error | undefined
  private stopping = false
  private exited = false
  private readonly exit: Promise<unknown>

  constructor(url: URL, options: WorkerOptions) {
    this.worker = new Worker(url, options)
    this.exit = once(this.worker, 'exit').catch(() => undefined)
    this.worker.on('error', (err) => {
      this.failure ??= err
    })
    this.worker.on('exit', (code) => {
      this.exited = true
      if (!this.stopping) this.failure ??= new Error(`worker exited early with code ${code}`)
    })
  }

  check(): void {
    if (this.failure) throw this.failure
  }

  async stop(ask: () => void, graceMs = 2000): Promise<void> {
    this.stopping = true
    if (this.exited) return
    ask()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(resolve, graceMs, 'late')
    })
    const outcome = await Promise.race([this.exit, late])
    clearTimeout(timer)
    if (outcome === 'late') await this.worker.terminate()
  }
}
