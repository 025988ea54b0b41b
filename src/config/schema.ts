/**
 * The one schema of the daemon's configuration (`linkmux up`), from the YAML
 * file and from flags. Defaults live inline, every object is strict (an
 * unknown key is an error, so a typo never silently falls back to a default),
 * and every field says its unit and default.
 *
 * Units: durations are SECONDS in the file and in the parsed `Config` (what
 * users write and what `linkmux config show` prints); text with a unit
 * ("500ms", "2m") is accepted and turned into seconds. `toRuntime` (runtime.ts)
 * converts to the milliseconds the code uses, once, in one place.
 *
 * Safety: a front end listening beyond loopback without `auth` is refused unless
 * `listen.allowOpen` is true — an open proxy lends your uplinks to anyone who
 * finds it. The control API has no authentication, so the same applies to it.
 */
import { z } from 'zod';
import { DEFAULT_POLICY, POLICY_NAMES } from '../scheduler/policies.js';
import { decodeJoinToken } from '../links/join-token.js';
import { isSocks5LinkRequest, nodeLinkOptions, parseSocks5Link } from '../links/remote-links.js';
import { isLoopbackHost, parseHostPort } from '../net/address.js';
import { duration } from './fields.js';
import { dnsSchema } from './sections/dns.js';
import { gatewaySchema } from './sections/gateway.js';
import { healthSchema } from './sections/health.js';
import { limitsSchema } from './sections/limits.js';
import { joinToken, linkRequest } from './sections/links.js';
import { authSchema, listenSchema } from './sections/listen.js';
import { nodeSchema } from './sections/node.js';
import { failoverSchema, ruleSchema, stickySchema } from './sections/policy.js';
import { rpcSchema } from './sections/rpc.js';
import { serverSchema } from './sections/server.js';

export const configSchema = z
  .strictObject({
    /** Where the daemon listens; loopback by default. */
    listen: listenSchema,
    /** Optional credentials, required by both front ends when set. Default: none. */
    auth: authSchema.optional(),
    /**
     * Interface names or addresses, and SOCKS5 upstreams (socks5://user:pass@host:port#name),
     * to use as links; with no interface named, every usable uplink is used too. Default [].
     */
    links: z.array(linkRequest).default([]),
    /** Join tokens of linkmux nodes (`linkmux node` prints one); each adds the node's uplinks as links. Default []. */
    join: z.array(joinToken).default([]),
    /** Lend this machine's uplinks to the LAN as a linkmux node. */
    node: nodeSchema,
    /** `linkmux server` and its clients: one TCP connection over every uplink (kernel MPTCP). */
    server: serverSchema,
    /** `linkmux gateway`: the whole LAN over every WAN of this Linux router (root). */
    gateway: gatewaySchema,
    /** How sockets are forced onto their link: auto | device | address. Default "auto". */
    bind: z.enum(['auto', 'device', 'address']).default('auto'),
    /** Which link a new connection gets. Default "adaptive". */
    policy: z.enum(POLICY_NAMES).default(DEFAULT_POLICY),
    /** Link id → relative weight (> 0), for the weighted policy; unlisted links weigh 1. Default {}. */
    weights: z.record(z.string().min(1), z.number().positive().max(1_000_000)).default({}),
    /** Settings of the sticky policy (and of rules using policy:sticky). */
    sticky: stickySchema,
    /** Seconds a connect through one link may take. Default 10. */
    connectTimeout: duration(0.1, 300).default(10),
    /** How a failed connect moves on to other links. */
    failover: failoverSchema,
    /** Active probes through each link and the thresholds that change its state. */
    health: healthSchema,
    /** Name lookups: sent through the links, never only by the main route. */
    dns: dnsSchema,
    /** aria2-compatible JSON-RPC (downloads over every link, driven by AriaNg or an extension). */
    rpc: rpcSchema,
    /** Destination rules, first match wins; then privateDirect; then the policy. Default []. */
    rules: z.array(ruleSchema).default([]),
    /** Loopback, private and link-local destinations go direct, not through an uplink. Default true. */
    privateDirect: z.boolean().default(true),
    /** Deadlines, connection caps and failed-login logging of every front end. */
    limits: limitsSchema,
    /** Seconds open connections get to finish after SIGINT/SIGTERM before they are cut. Default 10. */
    drainTimeout: duration(0, 3600).default(10),
    /** Log level on stdout: debug | info | warn | error. Default "info". */
    log: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  })
  .superRefine((cfg, ctx) => {
    checkListeners(cfg, ctx);
    if (cfg.links.some((l) => !isSocks5LinkRequest(l))) {
      const ids = knownLinkIds(cfg);
      for (const id of Object.keys(cfg.weights)) {
        if (!ids.includes(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['weights', id],
            message: `"${id}" is not a link id (${ids.join(', ')}): weights are keyed by link id`,
          });
        }
      }
    }
    const seen = new Set<string>();
    cfg.links.forEach((id, i) => {
      if (seen.has(id))
        ctx.addIssue({ code: 'custom', path: ['links', i], message: `"${id}" is listed twice` });
      seen.add(id);
    });
  });

type Ctx = z.core.$RefinementCtx<z.output<typeof configSchema>>;

/** The ids of the links the config names: interfaces, SOCKS5 upstreams, nodes' links. */
function knownLinkIds(cfg: { links: readonly string[]; join: readonly string[] }): string[] {
  const ids: string[] = [];
  for (const l of cfg.links) {
    if (!isSocks5LinkRequest(l)) ids.push(l);
    else ids.push(safely(() => parseSocks5Link(l).id) ?? l);
  }
  for (const t of cfg.join) {
    for (const o of safely(() => nodeLinkOptions(decodeJoinToken(t))) ?? []) ids.push(o.id);
  }
  return ids;
}

function safely<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** Open listeners need auth (front ends) or allowOpen; two listeners cannot share an address. */
function checkListeners(cfg: z.output<typeof configSchema>, ctx: Ctx): void {
  const used = new Map<string, string>();
  for (const name of ['socks', 'http', 'control'] as const) {
    const text = cfg.listen[name];
    if (text === false || text.startsWith('/')) continue;
    const hp = parseHostPort(text);
    if (!hp) continue;
    if (hp.port !== 0) {
      const key = `${hp.host.toLowerCase()}:${hp.port}`;
      const other = used.get(key);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          path: ['listen', name],
          message: `${text} is already used by listen.${other}: give each listener its own port`,
        });
      }
      used.set(key, name);
    }
    if (isLoopbackHost(hp.host) || cfg.listen.allowOpen) continue;
    const message =
      name === 'control'
        ? `${text} is reachable from other machines and the control API has no authentication: ` +
          'listen on 127.0.0.1 or a unix socket, or set listen.allowOpen: true if a firewall guards it'
        : cfg.auth
          ? undefined
          : `${text} is reachable from other machines and no auth is set, so anyone could use your links: ` +
            'set auth.username and auth.password, or listen.allowOpen: true to run an open proxy';
    if (message) ctx.addIssue({ code: 'custom', path: ['listen', name], message });
  }
}

/** Deeply read-only: the parsed config is frozen, and its type says so. */
export type DeepReadonly<T> = T extends (infer E)[]
  ? ReadonlyArray<DeepReadonly<E>>
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/** The parsed, validated, frozen configuration: durations in seconds, defaults filled in. */
export type Config = DeepReadonly<z.output<typeof configSchema>>;

/** What a file or flags may contain before parsing (every field optional). */
export type ConfigInput = z.input<typeof configSchema>;
