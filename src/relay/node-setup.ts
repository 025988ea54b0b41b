/**
 * Everything a node needs before it can serve, from its runtime config and
 * this machine's interfaces: its identity (made once and kept), the addresses
 * to listen on, which links it lends, and the join token that tells clients
 * all of that. Shared by `linkmux node`, `node --init/--token` and `up --node`.
 */
import os from 'node:os';
import type { RuntimeNode } from '../config/runtime.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { LinkmuxError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { encodeJoinToken } from '../links/join-token.js';
import type { JoinToken } from '../links/join-token.js';
import { advertisedAddress, nodeListenPoints } from './node-address.js';
import type { ListenPoint } from './node-address.js';
import { defaultStateDir, loadOrCreateIdentity } from './node-identity.js';
import type { NodeIdentity } from './node-identity.js';

export interface PreparedNode {
  identity: NodeIdentity;
  listen: ListenPoint[];
  lend: string[];
  token: JoinToken;
  tokenText: string;
}

export async function prepareNode(
  node: RuntimeNode,
  interfaces: readonly NetInterface[],
  lend: readonly string[],
  opts: { rotate?: boolean; logger?: Logger } = {},
): Promise<PreparedNode> {
  if (lend.length === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_NO_LINKS',
      'a node lends uplinks of its own and this machine has none in use: connect one, or name it with --link',
    );
  }
  const listen = nodeListenPoints(node.listen, interfaces);
  const at = advertisedAddress(listen, node.advertise);
  const { identity, token, tokenText } = await issueToken(
    node.stateDir ?? defaultStateDir(),
    node.name ?? defaultNodeName(),
    at,
    // One link per uplink when there are several, so clients balance over them; else the node's one link.
    { links: lend.length > 1 ? [...lend] : [] },
    opts,
  );
  return { identity, listen, lend: [...lend], token, tokenText };
}

/**
 * The identity kept in `stateDir` (made, or rotated, on demand) and the join
 * token that carries it: shared by `linkmux node` and `linkmux server`, which
 * differ only in the links they offer and the token's kind.
 */
export async function issueToken(
  stateDir: string,
  name: string,
  at: { host: string; port: number },
  offer: Pick<JoinToken, 'links' | 'kind'>,
  opts: { rotate?: boolean; logger?: Logger } = {},
): Promise<{ identity: NodeIdentity; token: JoinToken; tokenText: string }> {
  const identity = await loadOrCreateIdentity(stateDir, {
    name,
    ...(opts.rotate ? { rotate: true } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const token: JoinToken = {
    name,
    host: at.host,
    port: at.port,
    fingerprint: identity.fingerprint,
    secret: identity.secret,
    ...offer,
  };
  return { identity, token, tokenText: encodeJoinToken(token) };
}

/** This machine's host name, cut to what a token's name allows. */
export function defaultNodeName(hostname = os.hostname()): string {
  const cleaned = hostname
    .split('.')[0]!
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 32);
  return cleaned === '' ? 'node' : cleaned;
}
