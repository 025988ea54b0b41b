// Fixtures of the config tests (test/unit/config*.test.ts): the defaults, and the message of a refused config.
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { isLinkmuxError, type ErrorCode } from '../../src/util/errors.js';

/** The parsed config of an empty file: every default. */
export const DEFAULTS = {
  listen: { socks: '127.0.0.1:1080', http: '127.0.0.1:8080', control: '127.0.0.1:9190', allowOpen: false },
  links: [],
  join: [],
  node: { enabled: false, listen: 'lan:7300', allow: [] },
  server: { listen: '[::]:7400', allow: [] },
  gateway: {
    lan: [],
    uplinks: [],
    rules: [],
    weightInterval: 5,
    markBase: 0x4c00,
    markMask: 0xff00,
    tableBase: 4200,
    priority: 4200,
  },
  bind: 'auto',
  policy: 'adaptive',
  weights: {},
  sticky: { ttl: 600, fallback: 'adaptive' },
  connectTimeout: 10,
  dns: { servers: [], system: true, tryTimeout: 1, timeout: 5 },
  rpc: {
    enabled: false,
    listen: '127.0.0.1:6800',
    maxConcurrentDownloads: 5,
    connectionsPerLink: 1,
    maxResults: 1000,
  },
  failover: { attempts: 3, stagger: 2 },
  health: {
    interval: 1,
    timeout: 0.5,
    failThreshold: 3,
    riseThreshold: 2,
    slowRtt: 0.5,
    // targets unset: the daemon probes defaultProbeTargets(system nameservers).
  },
  rules: [],
  privateDirect: true,
  limits: {
    handshakeTimeout: 10,
    headersTimeout: 10,
    idleTimeout: 7200,
    maxConnections: 0,
    maxConnectionsPerClient: 0,
    fdReserve: 0,
    loginLogInterval: 60,
    relayHold: 0.1,
  },
  drainTimeout: 10,
  log: 'info',
};

/** The LINKMUX_ERR_CONFIG message of a failing call. */
export function configError(fn: () => unknown, code: ErrorCode = 'LINKMUX_ERR_CONFIG'): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isLinkmuxError(err, code), `not a ${code} error: ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected a ${code} error`);
}

/** A flag refused by mergeFlags is a usage error (exit 2), not a config-file one. */
export const flagError = (fn: () => unknown) => configError(fn, 'LINKMUX_ERR_USAGE');

export const yamlError = (text: string) => configError(() => parseConfigText(text, 'config.yaml'));
