/**
 * One HTTP proxy front end and one origin shared by the tests of a file
 * (test/integration/http-proxy-server*.test.ts): started before them, closed
 * after them. The proxy's fake dialer refuses denied.example and port 6666 as
 * PoolDialer's rules would, and reports a connect timeout for TIMEOUT_PORT.
 * `origin`, `dialer` and `proxy` are live bindings, set once `before` has run.
 */
import { after, before } from 'node:test';
import { LinkmuxError } from '../../src/util/errors.js';
import type { Destination } from '../../src/links/link.js';
import type { Dialer } from '../../src/proxy/dialer.js';
import type { FakeDialer } from './http-proxy-fixtures.js';
import { closeServer, fakeDialer, originServer, startProxy } from './http-proxy-fixtures.js';

/** The dialer applies the rules (as PoolDialer does): a denied destination is LINKMUX_ERR_DENIED, never dialed. */
export function denying(inner: FakeDialer, denied: (dst: Destination) => boolean): Dialer {
  return {
    dial: (dst, ctx) =>
      denied(dst)
        ? Promise.reject(
            new LinkmuxError('LINKMUX_ERR_DENIED', `${dst.host}:${dst.port} is refused by a rule`),
          )
        : inner.dial(dst, ctx),
    openUdp: (family, ctx) => inner.openUdp(family, ctx),
  };
}

export let origin: Awaited<ReturnType<typeof originServer>>;
export let dialer: FakeDialer;
export let proxy: Awaited<ReturnType<typeof startProxy>>;
export const TIMEOUT_PORT = 9; // the fake dialer reports a connect timeout for it

before(async () => {
  origin = await originServer();
  dialer = fakeDialer(new Set([TIMEOUT_PORT]));
  proxy = await startProxy({
    dialer: denying(dialer, (dst) => dst.host === 'denied.example' || dst.port === 6666),
  });
});

after(async () => {
  await closeServer(proxy.server);
  await closeServer(origin.server);
});
