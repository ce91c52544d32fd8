import { ConveyorError } from '../../errors.js'

/*
 * The NATS client is an optional peer dependency: only this entry point
 * (`conveyor-lanes/sources/nats`) loads it, and without it says what to install.
 */

export type Transport = typeof import('@nats-io/transport-node')
export type JetStreamModule = typeof import('@nats-io/jetstream')

export interface NatsClient {
  transport: Transport
  jetstream: JetStreamModule
}

const INSTALL = 'npm install @nats-io/transport-node@3 @nats-io/jetstream@3'

function isMissingModule(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
}

/** Imports the NATS client, or throws PEER_MISSING saying which packages to install. */
export async function loadNatsClient(): Promise<NatsClient> {
  try {
    const [transport, jetstream] = await Promise.all([
      import('@nats-io/transport-node'),
      import('@nats-io/jetstream'),
    ])
    return { transport, jetstream }
  } catch (err) {
    if (!isMissingModule(err)) throw err
    throw new ConveyorError(
      'PEER_MISSING',
      `conveyor-lanes/sources/nats needs the NATS client, an optional peer dependency: ${INSTALL}`,
      { cause: err },
    )
  }
}
