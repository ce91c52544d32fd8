import { execFile } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { fixture } from './helpers.js'

function runNode(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

describe('worker errors outside a lane task', () => {
  // Piscina emits 'error' when a worker that has no task dies (here: a handler's stray timer
  // throws in a worker whose lane already drained, while stop() waits for the other lane's
  // teardown). Unheard, an EventEmitter 'error' throws in the main process; the queue must
  // report it on its own 'error' event instead, and stop() must resolve.
  it('an uncaught exception in an idle worker does not kill the main process', async () => {
    const { code, stdout, stderr } = await runNode(fixture('stray-main.mjs'))
    expect({ code, stdout, stderr: stderr.split('\n').slice(0, 3).join('\n') }).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('stopped'),
    })
  })
})
