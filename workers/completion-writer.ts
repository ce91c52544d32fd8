import { serialize } from 'node:v8'
import {
  COMPLETION_PREFIX,
  Completion,
  type CompletionKind,
  completionBytes,
  writeCompletion,
} from '../src/lane/completion.js'
import { errorText, type SerializedError, serializeError } from '../src/lane/error-wire.js'
import type { RingReader } from '../src/ring/index.js'
import { RingWriter } from '../src/ring/index.js'

/** How long one wait for completion-ring room lasts before it rings the main thread again. */
const ROOM_WAIT_MS = 5

/**
 * The worker's side of the completion ring (format in src/lane/completion.ts). One writer per
 * lane task; records are published at once, since a caller may be awaiting them.
 */
export class CompletionWriter {
  private readonly writer: RingWriter
  private readonly out: Buffer

  constructor(
    completions: SharedArrayBuffer,
    /** The lane's request ring: rung (never released) while waiting for room. */
    private readonly requests: RingReader,
  ) {
    this.writer = new RingWriter(completions)
    this.out = Buffer.from(completions)
  }

  /**
   * Answers a run() caller with the handler's result. A result that cannot be serialized, or
   * that could never fit the completion ring, gives up with RESULT_ENCODE_FAILED: retrying
   * would produce the same result.
   */
  async answer(start: number, attempt: number, result: unknown): Promise<void> {
    let body: Buffer
    try {
      body = serialize(result)
    } catch (err) {
      const error = serializeError(err, 'RESULT_ENCODE_FAILED')
      error.message = `the handler's result could not be serialized for run(): ${error.message}`
      return this.write(Completion.GAVE_UP, start, attempt, error, undefined)
    }
    const room = this.writer.maxPayload - COMPLETION_PREFIX
    if (body.byteLength > room) {
      const error = serializeError(
        new Error(
          `the handler's result takes ${body.byteLength} bytes serialized, more than the ${room} a run() result may take with laneBytes ${this.writer.capacity / 2}: raise laneBytes, or return less`,
        ),
        'RESULT_ENCODE_FAILED',
      )
      return this.write(Completion.GAVE_UP, start, attempt, error, undefined)
    }
    return this.write(Completion.RESULT, start, attempt, undefined, body)
  }

  /** Reports a failed attempt (FAILED) or the final one (GAVE_UP), with the raw payload. */
  fail(
    kind: typeof Completion.FAILED | typeof Completion.GAVE_UP,
    start: number,
    attempt: number,
    error: SerializedError,
    payload: Uint8Array,
  ): Promise<void> {
    return this.write(kind, start, attempt, error, payload)
  }

  /** The record was skipped, or its handler gave up, because its signal fired. */
  aborted(start: number, attempt: number, payload: Uint8Array): Promise<void> {
    return this.write(Completion.ABORTED, start, attempt, undefined, payload)
  }

  /** Writes one completion and publishes it; waits while the ring is full. */
  private async write(
    kind: CompletionKind,
    start: number,
    attempt: number,
    error: SerializedError | undefined,
    rest: Uint8Array | undefined,
  ): Promise<void> {
    const { writer } = this
    const restBytes = rest ? rest.byteLength : 0
    // Sized so this always holds: a request payload plus the prefix leaves half the ring.
    const text = error ? errorText(error, writer.maxPayload - completionBytes(0, restBytes)) : ''
    const size = completionBytes(Buffer.byteLength(text), restBytes)
    let at = writer.reserve(size)
    while (at < 0) {
      // The main thread drains completions when RELEASE moves or is rung: ring it, then wait.
      // Never release here: the record being handled is not finished, and RELEASE past it
      // would let the main thread settle it (and reuse its memory) too early.
      writer.publish()
      this.requests.ring()
      await writer.waitForRelease(writer.released, ROOM_WAIT_MS)
      at = writer.reserve(size)
    }
    writer.commit(writeCompletion(this.out, at, start, attempt, text, rest), kind)
    writer.publish()
    // The main thread drains completions when RELEASE moves; a failed attempt's record stays
    // unreleased through its backoff, so ring it now or 'failed' would wait for the retry.
    if (kind === Completion.FAILED) this.requests.ring()
  }
}
