import { Writable } from 'node:stream'
import { DoneReporter } from '../support/signals.js'

/**
 * thread-stream destination for the ring-transport suite. thread-stream hands its destination
 * decoded text in arbitrary chunks (whatever was in its shared buffer), so messages are framed
 * with '\n' and split back here into one string each; the handler is empty. The count goes to
 * the shared DONE slot so main learns when a sample is through.
 */
function handle(_message: string): void {}

export default async function build(opts: { signals: SharedArrayBuffer }): Promise<Writable> {
  const done = new DoneReporter(opts.signals)
  let count = 0
  let rest = ''
  return new Writable({
    decodeStrings: false,
    // Chunks can be the whole 4 MiB buffer: never ask thread-stream to wait for 'drain'.
    highWaterMark: 1 << 30,
    write(chunk: string, _encoding, callback) {
      const text = rest.length > 0 ? rest + chunk : chunk
      let from = 0
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
        handle(text.slice(from, nl))
        count++
        from = nl + 1
      }
      rest = from < text.length ? text.slice(from) : ''
      done.report(count)
      callback()
    },
  })
}
