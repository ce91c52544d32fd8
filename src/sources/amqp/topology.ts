import type { Channel } from 'amqplib'
import type { AmqpAdapterOptions } from './options.js'

/**
 * Declares what the source consumes from, on every (re)connect (idempotent while the
 * arguments match): the dead-letter exchange (direct, durable), the dead-letter queue bound to
 * it with the dead-letter routing key, and the queue itself (durable, of its type, dead-lettering
 * there). Without assertQueue it only checks that the queue exists.
 */
export async function declareTopology(
  channel: Channel,
  options: AmqpAdapterOptions,
): Promise<void> {
  const { queue, deadLetterExchange, deadLetterRoutingKey, deadLetterQueue } = options
  if (!options.assertQueue) {
    await channel.checkQueue(queue)
    return
  }
  await channel.assertExchange(deadLetterExchange, 'direct', { durable: true })
  if (deadLetterQueue !== false) {
    await channel.assertQueue(deadLetterQueue, { durable: true })
    await channel.bindQueue(deadLetterQueue, deadLetterExchange, deadLetterRoutingKey)
  }
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      'x-queue-type': options.queueType,
      'x-dead-letter-exchange': deadLetterExchange,
      'x-dead-letter-routing-key': deadLetterRoutingKey,
      ...options.queueArguments,
    },
  })
}
