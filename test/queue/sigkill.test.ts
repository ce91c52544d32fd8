import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixture, sleep, waitFor } from './helpers.js'

describe('SIGKILL of the process running a queue', () => {
  it('never leaves an ack for a message whose handler had not finished', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'conveyor-sigkill-'))
    const journal = join(dir, 'journal')
    try {
      const child = spawn(process.execPath, [fixture('journal-main.mjs'), journal], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let out = ''
      child.stdout.on('data', (chunk) => {
        out += chunk
      })
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.on('exit', (_code, signal) => resolve(signal)),
      )
      await waitFor(() => out.includes('started'), 'the child queue to start', 20_000)
      await sleep(400)
      // Only the process this test started, by its pid.
      process.kill(child.pid!, 'SIGKILL')
      expect(await exited).toBe('SIGKILL')

      const lines = readFileSync(journal, 'utf8').split('\n').filter(Boolean)
      const handled = new Set<string>()
      const acked: number[] = []
      for (const line of lines) {
        const [what, id] = line.split(' ')
        if (what === 'handled') handled.add(id)
        else acked.push(Number(id))
      }
      expect(acked.length).toBeGreaterThan(100)
      // At-least-once: an ack is a promise that the handler finished that message.
      for (const id of acked) expect(handled.has(String(id)), `message ${id} acked`).toBe(true)
      // No message acked twice.
      expect(new Set(acked).size).toBe(acked.length)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
