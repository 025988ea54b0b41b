/**
 * Failure injection on the testbed, as commands: a blackholed ISP (upstream dead,
 * cable fine) and a link taken down administratively or by carrier. Pure, like
 * topology.ts; testbed.ts runs them.
 */
import { ip, nsExec, type Command } from './commands.js';
import { ISP_CLIENT_DEV, uplinkAt, type TopologyPlan } from './topology.js';

/**
 * Blackholing drops everything the ISP forwards, receives or sends, while the link
 * itself stays up (ARP still answers): the "upstream dead, cable fine" failure.
 * Both directions are written so that applying either one twice is harmless.
 */
export function blackholeCommands(plan: TopologyPlan, index: number, on: boolean): Command[] {
  const u = uplinkAt(plan, index);
  const reset = 'table ip linkmux_blackhole {}\ndelete table ip linkmux_blackhole\n';
  const chains = on
    ? [
        'table ip linkmux_blackhole {',
        ...['forward', 'input', 'output'].map(
          (hook) => `  chain bh_${hook} { type filter hook ${hook} priority -10; policy drop; }`,
        ),
        '}',
        '',
      ].join('\n')
    : '';
  return [{ ...nsExec(u.ispNs, 'nft', '-f', '-'), input: reset + chains }];
}

/**
 * How a link goes down: 'admin' sets its machine's device down (the kernel removes its
 * routes, sockets bound to it fail at once); 'carrier' sets the ISP's end down, so
 * the machine's device loses carrier but keeps its routes, like a pulled cable on a
 * host without a network manager.
 */
export type LinkDownMode = 'admin' | 'carrier';

export function linkStateCommands(
  plan: TopologyPlan,
  index: number,
  up: boolean,
  mode: LinkDownMode,
): Command[] {
  const u = uplinkAt(plan, index);
  const state = up ? 'up' : 'down';
  const cmds =
    mode === 'admin'
      ? [ip('-n', u.hostNs, 'link', 'set', u.dev, state)]
      : [ip('-n', u.ispNs, 'link', 'set', ISP_CLIENT_DEV, state)];
  if (up) {
    // ARP entries left INCOMPLETE/FAILED by the outage would delay or refuse the first
    // connections after the link returns (up to ~1 s, or EHOSTUNREACH): start afresh.
    cmds.push(
      ip('-n', u.hostNs, 'neigh', 'flush', 'dev', u.dev),
      ip('-n', u.ispNs, 'neigh', 'flush', 'dev', ISP_CLIENT_DEV),
    );
  }
  return cmds;
}
