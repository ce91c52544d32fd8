import type { Suite } from '../harness.js'
import { ringTransport } from './ring-transport.js'

/** Every suite `npm run bench` runs, in order. Add new suites here. */
export const suites: Suite[] = [ringTransport]
