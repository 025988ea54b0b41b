/**
 * Everything `linkmux server` needs before it serves: its identity (made once
 * and kept, in `<stateDir>/server`, apart from a node's on the same machine so
 * a node's token never opens the server), where it listens, and the join token
 * (kind "server") clients give to `up --server` / `get --server`.
 */
import { join } from 'node:path';
import type { RuntimeServer } from '../config/runtime.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { specialAddressKind } from '../net/ip-ranges.js';
import { canonicalIp, formatHostPort } from '../net/address.js';
import { LinkmuxError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { JoinToken } from '../links/join-token.js';
import { advertisedAddress, type ListenPoint } from './node-address.js';
import { defaultStateDir, type NodeIdentity } from './node-identity.js';
import { defaultNodeName, issueToken } from './node-setup.js';

export interface PreparedServer {
  identity: NodeIdentity;
  listen: ListenPoint;
  token: JoinToken;
  tokenText: string;
}

export function serverStateDir(stateDir: string | undefined): string {
  return join(stateDir ?? defaultStateDir(), 'server');
}

export async function prepareServer(
  server: RuntimeServer,
  interfaces: readonly NetInterface[],
  opts: { rotate?: boolean; logger?: Logger } = {},
): Promise<PreparedServer> {
  const listen = { host: server.listen.host, port: server.listen.port };
  const advertise = server.advertise ?? guessAdvertise(interfaces, listen.port);
  if (advertise === undefined && (listen.host === '::' || listen.host === '0.0.0.0')) {
    throw new LinkmuxError(
      'LINKMUX_ERR_USAGE',
      'this machine has no public address to put in the token: give the address clients dial with ' +
        '--advertise HOST[:PORT] (server.advertise in the config)',
    );
  }
  const at = advertisedAddress([listen], advertise);
  const { identity, token, tokenText } = await issueToken(
    serverStateDir(server.stateDir),
    server.name ?? defaultNodeName(),
    at,
    { links: [], kind: 'server' },
    opts,
  );
  return { identity, listen, token, tokenText };
}

/**
 * Without --advertise: the listen address when it is a specific one, else this
 * machine's first public address (a VPS has one), else none (advertisedAddress
 * then asks for --advertise).
 */
function guessAdvertise(interfaces: readonly NetInterface[], port: number): string | undefined {
  for (const i of interfaces) {
    if (!i.up || i.loopback) continue;
    for (const a of i.addresses) {
      const c = canonicalIp(a.address);
      if (c && specialAddressKind(c) === undefined) return formatHostPort({ host: a.address, port });
    }
  }
  return undefined;
}
