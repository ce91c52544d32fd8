import { createRequire } from 'node:module'
import type * as Amqplib from 'amqplib'
import { ConveyorError } from '../../errors.js'

/** amqplib's promise API: what the source calls to connect. */
export type AmqpClient = Pick<typeof Amqplib, 'connect'>

const MISSING =
  "conveyor-lanes/sources/amqp needs the 'amqplib' package, an optional peer dependency: npm install amqplib"

/**
 * Throws PEER_MISSING at once, saying what to install, when amqplib (an optional peer
 * dependency) is missing: amqpSource() says so rather than its first connect.
 */
export function requireAmqplibInstalled(): void {
  try {
    createRequire(import.meta.url).resolve('amqplib')
  } catch (err) {
    throw new ConveyorError('PEER_MISSING', MISSING, { cause: err })
  }
}

let client: Promise<AmqpClient> | undefined

/**
 * Loads amqplib the first time a source connects: importing `conveyor-lanes/sources/amqp`
 * alone does not load it, and `conveyor-lanes` never does.
 */
export function loadAmqplib(): Promise<AmqpClient> {
  client ??= import('amqplib').then(
    (module) => (module.default ?? module) as AmqpClient,
    (err: unknown) => {
      client = undefined
      throw new ConveyorError('PEER_MISSING', MISSING, { cause: err })
    },
  )
  return client
}
