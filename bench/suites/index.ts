import type { Suite } from '../harness.js'
import { matrixSuite } from './matrix.js'
import { queueSuite } from './queue.js'
import { redisSourceSuite } from './redis-source.js'
import { ringTransport } from './ring-transport.js'

/**
 * Every suite `npm run bench` runs, in order. Add new suites here. Opt-in suites (redis-source:
 * it needs Redis) run only when --filter names them.
 */
export const suites: Suite[] = [ringTransport, queueSuite, matrixSuite, redisSourceSuite]
