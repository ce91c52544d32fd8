/**
 * `conveyor-lanes/sources`: the contract broker sources keep, and the base they share, for
 * writing a source for another broker. Each broker's source has its own entry point
 * (`conveyor-lanes/sources/redis`, `/nats`, `/amqp`), so its client loads only when used.
 */
export type { BrokerAdapter, Delivery } from './adapter.js'
export { BrokerSource } from './broker-source.js'
export type { BrokerEnvelope, Source, SourceEvents, SourceOptions } from './source.js'
export { resolveSourceOptions, SOURCE_OPTION_KEYS } from './source-options.js'
