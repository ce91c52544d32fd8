/**
 * Every error conveyor raises on purpose is a ConveyorError with a stable `code`, so callers
 * can branch on `err.code` instead of parsing messages. Messages say what to change.
 */
export type ConveyorErrorCode =
  | 'INVALID_OPTION'
  | 'MESSAGE_TOO_LARGE'
  | 'ENCODE_FAILED'
  | 'DECODE_FAILED'
  | 'RESULT_ENCODE_FAILED'
  | 'HANDLER_INVALID'
  | 'HANDLER_FAILED'
  | 'WORKER_DIED'
  | 'QUEUE_STOPPED'
  | 'QUEUE_NOT_STARTED'
  | 'QUEUE_FULL'
  | 'RING_CLOSED'

export class ConveyorError extends Error {
  readonly code: ConveyorErrorCode

  constructor(code: ConveyorErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'ConveyorError'
    this.code = code
  }
}

export function isConveyorError(err: unknown, code?: ConveyorErrorCode): err is ConveyorError {
  return err instanceof ConveyorError && (code === undefined || err.code === code)
}
