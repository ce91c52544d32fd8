import type { Suite } from '../harness.js'
import { matrixSuite } from './matrix.js'
import { queueSuite } from './queue.js'
import { ringTransport } from './ring-transport.js'

/** Every suite `npm run bench` runs, in order. Add new suites here. */
export const suites: Suite[] = [ringTransport, queueSuite, matrixSuite]
