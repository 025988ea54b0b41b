// Gateway plans shared by the gateway tests (test/unit/gateway-*.test.ts): the golden cases a, b and c.
import { planGateway, type GatewayPlan, type PlanInput, type UplinkDecl } from '../../src/gateway/plan.js';

/** Uplink n: wan<n>, 198.18.<n>.2 via 198.18.<n>.1. */
export const up = (n: number, extra: Partial<UplinkDecl> = {}): UplinkDecl => ({
  name: `up${n}`,
  dev: `wan${n}`,
  gateway: `198.18.${n}.1`,
  address: `198.18.${n}.2`,
  ...extra,
});

/** A plan of three uplinks on lan0 with no rules, all online, unless told otherwise. */
export function plan(input: Partial<PlanInput>): GatewayPlan {
  return planGateway({
    lan: ['lan0'],
    uplinks: [up(1), up(2), up(3)],
    rules: [],
    online: new Map(),
    measured: new Map(),
    ...input,
  });
}

/** (a) three uplinks, equal weights, all online, one LAN, no rules. */
export const planA = (): GatewayPlan => plan({});

/** (b) measured 8/4/2, up1 offline, four rules; up3 has no address of its own. */
export const planB = (): GatewayPlan =>
  plan({
    lan: ['lan0', 'wlan0'],
    uplinks: [up(1), up(2), up(3, { address: undefined })],
    measured: new Map([
      ['up1', 8],
      ['up2', 4],
      ['up3', 2],
    ]),
    online: new Map([['up1', false]]),
    rules: [
      { match: { destination: '192.0.2.0/24' }, action: { kind: 'bypass' } },
      { match: { source: '198.18.100.5/32' }, action: { kind: 'uplink', name: 'up2' } },
      { match: { destination: '198.51.100.0/24', port: 443 }, action: { kind: 'uplink', name: 'up1' } },
      { match: { destination: '2001:db8::/32' }, action: { kind: 'bypass' } },
    ],
  });

/** (c) no uplink online. */
export const planC = (): GatewayPlan =>
  plan({
    uplinks: [up(1), up(2)],
    online: new Map([
      ['up1', false],
      ['up2', false],
    ]),
    rules: [{ match: { port: '6881-6889' }, action: { kind: 'uplink', name: 'up2' } }],
  });
