/*
 * NATS names and subjects: what a stream or consumer may be called, how a subject filter with
 * wildcards matches, and what a JetStream message's ack subject says about its delivery.
 */

/** A stream or durable consumer name: no dots, wildcards, slashes or whitespace. */
export function isValidName(name: string): boolean {
  return name.length > 0 && !/[.*>/\\\s]/.test(name)
}

/** A subject one can publish to: dot-separated non-empty tokens, no wildcards, no whitespace. */
export function isLiteralSubject(subject: string): boolean {
  if (subject.length === 0 || /\s/.test(subject)) return false
  return subject.split('.').every((token) => token.length > 0 && token !== '*' && token !== '>')
}

/** A subject filter: like a literal subject, but `*` may stand for a token and a last `>` for the rest. */
export function isSubjectFilter(filter: string): boolean {
  if (filter.length === 0 || /\s/.test(filter)) return false
  const tokens = filter.split('.')
  return tokens.every(
    (token, i) =>
      token.length > 0 &&
      (token === '*' || token === '>' || !/[*>]/.test(token)) &&
      (token !== '>' || i === tokens.length - 1),
  )
}

/** Whether a literal subject falls under a filter (`*` one token, a last `>` one or more). */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.')
  const s = subject.split('.')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i
    if (i >= s.length) return false
    if (f[i] !== '*' && f[i] !== s[i]) return false
  }
  return f.length === s.length
}

export interface AckSubject {
  stream: string
  consumer: string
  /** Deliveries of this message so far, this one included. */
  deliveries: number
  streamSequence: number
}

/**
 * Reads a JetStream message's reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or
 * the longer form with `<domain>.<account hash>` after `$JS.ACK` (and a random last token).
 */
export function parseAckSubject(reply: string): AckSubject | undefined {
  const tokens = reply.split('.')
  if (tokens[0] !== '$JS' || tokens[1] !== 'ACK') return undefined
  if (tokens.length === 9) tokens.splice(2, 0, '_', '')
  if (tokens.length < 11) return undefined
  const deliveries = Number(tokens[6])
  const streamSequence = Number(tokens[7])
  if (!Number.isSafeInteger(deliveries) || !Number.isSafeInteger(streamSequence)) return undefined
  return { stream: tokens[4], consumer: tokens[5], deliveries, streamSequence }
}
