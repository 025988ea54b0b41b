/**
 * From the config's uplink entries and this machine's interfaces to the
 * UplinkDecls the plan uses. Pure. A missing gateway is taken from the
 * interface's default route; the uplink's own address (for the rule that
 * keeps the uplink's own traffic, health probes included, on it) is its first
 * address of the gateway's family.
 */
import net from 'node:net';
import type { NetInterface } from '../net/interfaces-types.js';
import { LinkmuxError } from '../util/errors.js';
import type { GatewayAction, GatewayRule, UplinkDecl } from './plan.js';

export interface UplinkEntry {
  interface: string;
  gateway?: string | undefined;
  weight?: number | undefined;
  name?: string | undefined;
}

export function resolveUplinks(
  entries: readonly UplinkEntry[],
  interfaces: readonly NetInterface[],
): UplinkDecl[] {
  if (entries.length === 0) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      'gateway.uplinks is empty: declare the WAN interfaces in the config (gateway: { uplinks: [{ interface: eth1 }], lan: [eth0] })',
    );
  }
  return entries.map((e) => {
    const name = e.name ?? e.interface;
    const iface = interfaces.find((i) => i.name === e.interface);
    const gateway = e.gateway ?? iface?.gateway;
    if (gateway === undefined) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `gateway uplink ${name}: ${iface ? `${e.interface} has no default route` : `no interface ${e.interface}`}, ` +
          'so its next hop is unknown: give it as gateway: in the config',
      );
    }
    const family = net.isIP(gateway) === 6 ? 6 : 4;
    const address = iface?.addresses.find(
      (a) => a.family === family && !a.address.startsWith('fe80'),
    )?.address;
    return {
      name,
      dev: e.interface,
      gateway,
      ...(address ? { address } : {}),
      ...(e.weight ? { weight: e.weight } : {}),
    };
  });
}

/** Config rules ({ match, action: "bypass" | "uplink:NAME" }) to plan rules. */
export function toGatewayRules(
  rules: ReadonlyArray<{
    match: { source?: string; destination?: string; port?: number | string };
    action: string;
  }>,
): GatewayRule[] {
  return rules.map((r) => {
    const action: GatewayAction =
      r.action === 'bypass' ? { kind: 'bypass' } : { kind: 'uplink', name: r.action.slice('uplink:'.length) };
    return {
      match: {
        ...(r.match.source !== undefined ? { source: r.match.source } : {}),
        ...(r.match.destination !== undefined ? { destination: r.match.destination } : {}),
        ...(r.match.port !== undefined ? { port: r.match.port } : {}),
      },
      action,
    };
  });
}
