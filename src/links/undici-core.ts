/**
 * The two pieces of undici linkmux uses, loaded without undici's index.
 *
 * The index also loads fetch, WebSocket, EventSource and the caches: 150–300 ms
 * of start-up on a busy 2-core machine, which is 1–3 % of a 30 MiB download
 * over three 8 Mbit/s links. undici has no "exports" map, so these are public
 * files of the package; the version is pinned in package.json and a unit test
 * checks, in a process that never loads the index, that they are the very
 * classes the index exports and that agents have request().
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

// The index adds request()/stream()/… to every dispatcher this way; do the same.
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(Dispatcher.prototype, require('undici/lib/api/index.js') as object);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
export type Agent = Undici.Agent;
