/**
 * From the config's uplink entries and this machine's interfaces to the
 * UplinkDecls the plan uses, and what is wrong with the others. Pure. A missing gateway is taken from the
 * interface's default route; the uplink's own address (for the rule that
 * keeps the uplink's own traffic, health probes included, on it) is its first
 * address of the gateway's family.
 */
import net from 'node:net';
import type { NetInterface } from '../net/interfaces-types.js';
import type { GatewayAction, GatewayRule, UplinkDecl } from './plan.js';

export interface UplinkEntry {
  interface: string;
  gateway?: string | undefined;
  weight?: number | undefined;
  name?: string | undefined;
}

/**
 * The uplinks that can be planned, and one problem (with its own fix) for each
 * entry that cannot: its interface does not exist, or it has no gateway given
 * and no default route to take one from. An empty list is a problem too.
 */
export function resolveUplinks(
  entries: readonly UplinkEntry[],
  interfaces: readonly NetInterface[],
): { uplinks: UplinkDecl[]; problems: string[] } {
  if (entries.length === 0) {
    return {
      uplinks: [],
      problems: [
        'gateway.uplinks is empty: declare the WAN interfaces in the config (gateway: { uplinks: [{ interface: eth1 }], lan: [eth0] })',
      ],
    };
  }
  const uplinks: UplinkDecl[] = [];
  const problems: string[] = [];
  entries.forEach((e, i) => {
    const name = e.name ?? e.interface;
    const iface = interfaces.find((x) => x.name === e.interface);
    if (!iface) {
      const here = interfaces.map((x) => x.name).join(', ') || 'none';
      problems.push(
        `uplink ${name}: interface ${e.interface} does not exist (interfaces here: ${here}): ` +
          `fix gateway.uplinks[${i}].interface`,
      );
      return;
    }
    const gateway = e.gateway ?? iface.gateway;
    if (gateway === undefined) {
      problems.push(
        `uplink ${name}: ${e.interface} has no default route, so its next hop is unknown: ` +
          `give it as gateway.uplinks[${i}].gateway in the config`,
      );
      return;
    }
    const family = net.isIP(gateway) === 6 ? 6 : 4;
    const address = iface.addresses.find(
      (a) => a.family === family && !a.address.startsWith('fe80'),
    )?.address;
    uplinks.push({
      name,
      dev: e.interface,
      gateway,
      ...(address ? { address } : {}),
      ...(e.weight ? { weight: e.weight } : {}),
    });
  });
  return { uplinks, problems };
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
