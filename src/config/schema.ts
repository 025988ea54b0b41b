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
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_HEALTH_CONFIG } from '../health/config.js';
import { DEFAULT_POLICY, POLICY_NAMES } from '../scheduler/policies.js';
import type { PolicyName } from '../scheduler/policies.js';
import { decodeJoinToken, encodeJoinToken } from '../links/join-token.js';
import { isSocks5LinkRequest, nodeLinkOptions, parseSocks5Link } from '../links/remote-links.js';
import { LinkmuxError } from '../util/errors.js';
import {
  cidrMatch,
  domainMatch,
  duration,
  formatHostPort,
  isLoopbackHost,
  listenAddress,
  nameserver,
  nodeListen,
  nodeName,
  parseHostPort,
  portMatch,
  probeTarget,
  ruleAction,
} from './fields.js';

type FallbackPolicy = Exclude<PolicyName, 'sticky'>;
const FALLBACK_POLICIES = POLICY_NAMES.filter((p): p is FallbackPolicy => p !== 'sticky') as [
  FallbackPolicy,
  ...FallbackPolicy[],
];

const count = (min: number, max: number) => z.number().int().min(min).max(max);

/** RFC 1929 carries each of username and password in at most 255 bytes. */
const credential = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s) <= 255, { message: 'must be at most 255 bytes (SOCKS5 limit)' });

export const listenSchema = z
  .strictObject({
    /** SOCKS5 front end, HOST:PORT; false or "" disables it. Default "127.0.0.1:1080". */
    socks: listenAddress(false).default('127.0.0.1:1080'),
    /** HTTP proxy front end, HOST:PORT; false or "" disables it. Default "127.0.0.1:8080". */
    http: listenAddress(false).default('127.0.0.1:8080'),
    /** Control API (status, metrics): HOST:PORT or a unix socket path; false disables it. Default "127.0.0.1:9190". */
    control: listenAddress(true).default('127.0.0.1:9190'),
    /** Allow listening beyond loopback without auth (front ends) or at all (control). Default false. */
    allowOpen: z.boolean().default(false),
  })
  .prefault({});

export const authSchema = z.strictObject({
  /** Required by both front ends when auth is set: SOCKS5 username/password (RFC 1929), HTTP Proxy-Authorization. */
  username: credential,
  /** Never printed: `linkmux config show` and the logs show "***". */
  password: credential,
});

export const stickySchema = z
  .strictObject({
    /** How long an unused destination stays on its link, in seconds. Default 600. */
    ttl: duration(1, 7 * 24 * 3600).default(600),
    /** The policy placing destinations not seen yet. Default "adaptive". */
    fallback: z.enum(FALLBACK_POLICIES).default('adaptive'),
  })
  .prefault({});

export const failoverSchema = z
  .strictObject({
    /** Links tried per connection, the first pick included. Default 3. */
    attempts: count(1, 16).default(3),
    /** Seconds a link has alone before the next one joins the connect race. Default 2. */
    stagger: duration(0, 60).default(2),
  })
  .prefault({});

const healthDefaults = DEFAULT_HEALTH_CONFIG;

export const healthSchema = z
  .strictObject({
    /** Seconds between two probe rounds of one link. Default 1. */
    interval: duration(0.05, 3600).default(healthDefaults.intervalMs / 1000),
    /**
     * Seconds a probe may take before it counts as failed. Default 0.5. A dead link
     * is offline at most interval + failThreshold × timeout after it broke (2.5 s).
     */
    timeout: duration(0.01, 60).default(healthDefaults.timeoutMs / 1000),
    /** Consecutive failed rounds before a link is offline. Default 3. */
    failThreshold: count(1, 100).default(healthDefaults.failThreshold),
    /** Consecutive good rounds before a link is back. Default 2. */
    riseThreshold: count(1, 100).default(healthDefaults.riseThreshold),
    /** Seconds: a probe slower than this makes a link degraded; not below timeout = off. Default 0.5. */
    slowRtt: duration(0.001, 60).default(healthDefaults.slowRttMs / 1000),
    /**
     * tcp://HOST:PORT, dns://IP[:PORT] or http(s) URLs; a round succeeds when any
     * answers; [] = passive checks only. Unset = the defaults: TCP 443 of four
     * public hosts plus dns:// of this system's public nameservers, read at
     * start (health/config.ts defaultProbeTargets), so `config show` omits it.
     */
    targets: z.array(probeTarget).optional(),
  })
  .prefault({});

export const ruleSchema = z
  .strictObject({
    /** Every field given must hold; at least one is needed. */
    match: z.strictObject({
      /** ".example.org": the name and its subdomains; "example.org": that name only. */
      domain: domainMatch.optional(),
      /** Destination network, "10.0.0.0/8" or "2001:db8::/32". */
      cidr: cidrMatch.optional(),
      /** Destination port, 443, or a range "8000-8999". */
      port: portMatch.optional(),
    }),
    /** direct | deny | link:<link id> | policy:<policy name>. */
    action: ruleAction,
  })
  .superRefine((rule, ctx) => {
    const m = rule.match;
    if (m.domain === undefined && m.cidr === undefined && m.port === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['match'],
        message: 'give at least one of domain, cidr, port (for everything else, set `policy`)',
      });
    }
  });

/** A join token (lmx1_…) from `linkmux node`, checked whole: version, checksum, fields. */
const joinToken = z.string().transform((text, ctx) => {
  try {
    // Stored in its canonical form: quotes and line breaks from a terminal's wrapping removed.
    return encodeJoinToken(decodeJoinToken(text));
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    return z.NEVER;
  }
});

/** An interface name or address, or a SOCKS5 upstream URL (checked here, never echoing its password). */
const linkRequest = z
  .string()
  .trim()
  .min(1)
  .superRefine((text, ctx) => {
    if (!isSocks5LinkRequest(text)) return;
    try {
      parseSocks5Link(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    }
  });

export const nodeSchema = z
  .strictObject({
    /** Lend this machine's uplinks to other linkmux machines; `linkmux node` and `up --node` set it. Default false. */
    enabled: z.boolean().default(false),
    /** "lan:PORT" (every private address of this machine), HOST:PORT or a port. Default "lan:7300". */
    listen: nodeListen.default('lan:7300'),
    /** The host (or HOST:PORT) written into join tokens; default: the first address listened on. */
    advertise: z.string().trim().min(1).optional(),
    /** The node's name in tokens; clients name its links after it. Default: this machine's host name. */
    name: nodeName.optional(),
    /** Private, loopback or link-local destinations the node may relay to anyway (CIDRs). Default []. */
    allow: z.array(cidrMatch).default([]),
    /** Certificate, key and secret live here. Default: /var/lib/linkmux as root, else ~/.local/state/linkmux. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .prefault({});

/** The join token of a `linkmux server` (`linkmux server --init` prints it); a node's token is refused here. */
const serverToken = z.string().transform((text, ctx) => {
  try {
    const t = decodeJoinToken(text);
    if (t.kind !== 'server') {
      ctx.addIssue({
        code: 'custom',
        message: `this is the token of node ${t.name}, not of a linkmux server: give it to join (--join), or print the server's with \`linkmux server --token\``,
      });
      return z.NEVER;
    }
    return encodeJoinToken(t);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof LinkmuxError ? err.message : String(err) });
    return z.NEVER;
  }
});

export const DEFAULT_SERVER_PORT = 7400;

/** Every address (IPv4 and IPv6) or HOST:PORT; a bare port means every address. */
const serverListen = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const text = String(value).trim();
  if (/^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535) return `[::]:${Number(text)}`;
  const hp = parseHostPort(text);
  if (hp && isIP(hp.host) !== 0 && hp.port >= 1) return formatHostPort(hp);
  ctx.addIssue({
    code: 'custom',
    message: `expected HOST:PORT with an IP address ([::]:7400 is every address) or a port, got ${JSON.stringify(value)}`,
  });
  return z.NEVER;
});

/**
 * `linkmux server` (kernel MPTCP through a machine of the user's own): `token`
 * is for the client (`up --server`, `get --server`); the other keys are the
 * server's own settings.
 */
export const serverSchema = z
  .strictObject({
    /** A server's join token: every connection goes through it over one MPTCP connection (root). Default: none. */
    token: serverToken.optional(),
    /** Where `linkmux server` listens: HOST:PORT or a port. Default "[::]:7400" (every address; the token is always required). */
    listen: serverListen.default('[::]:7400'),
    /** The HOST or HOST:PORT written into the server's token (its public name or address). Default: none (required by --init). */
    advertise: z.string().trim().min(1).optional(),
    /** The server's name in its token. Default: this machine's host name. */
    name: nodeName.optional(),
    /** Private or loopback destinations the server may relay to anyway (CIDRs). Default []. */
    allow: z.array(cidrMatch).default([]),
    /** The server's identity (in server/ below it) and the client's MPTCP ownership record. Default: as node.stateDir. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .prefault({});

const ipAddress = z
  .string()
  .trim()
  .refine((v) => isIP(v) !== 0, { message: 'expected an IP address, e.g. 192.168.1.1' });

export const gatewayUplinkSchema = z.strictObject({
  /** The WAN interface, e.g. "eth1" or "wwan0". */
  interface: z.string().trim().min(1).max(15),
  /** Its next hop; default: the gateway of the interface's default route. */
  gateway: ipAddress.optional(),
  /** Fixed relative weight (> 0); default: follow the capacity measured on the interface. */
  weight: z.number().positive().max(1_000_000).optional(),
  /** Id shown in status; default: the interface name. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,32}$/, 'use 1-32 letters, digits, ".", "_" or "-"')
    .optional(),
});

export const gatewayRuleSchema = z
  .strictObject({
    /** Every field given must hold; at least one is needed. */
    match: z.strictObject({
      /** LAN source network: "sticky per source", e.g. 192.168.1.50/32. */
      source: cidrMatch.optional(),
      /** Destination network. */
      destination: cidrMatch.optional(),
      /** Destination port or range "8000-8999" (TCP and UDP). */
      port: portMatch.optional(),
    }),
    /** bypass (the main routing table decides) or uplink:<name>. */
    action: z.string().regex(/^(bypass|uplink:[A-Za-z0-9._-]{1,32})$/, 'expected bypass or uplink:<name>'),
  })
  .superRefine((rule, ctx) => {
    const m = rule.match;
    if (m.source === undefined && m.destination === undefined && m.port === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['match'],
        message: 'give at least one of source, destination, port',
      });
    }
  });

export const gatewaySchema = z
  .strictObject({
    /** LAN interfaces whose new connections are spread over the uplinks. Default []. */
    lan: z.array(z.string().trim().min(1).max(15)).default([]),
    /** The WAN uplinks. Default [] (`linkmux gateway` needs at least one). */
    uplinks: z.array(gatewayUplinkSchema).default([]),
    /** Exceptions, first match wins: pin a source or destination to an uplink, or bypass. Default []. */
    rules: z.array(gatewayRuleSchema).default([]),
    /** Seconds between weight updates from the measured capacity. Default 5. */
    weightInterval: duration(1, 3600).default(5),
    /** Base of the packet/conntrack marks (low 8 bits zero). Default 0x4c00 (19456). */
    markBase: z.number().int().min(0x100).max(0x7fffff00).default(0x4c00),
    /** Mark bits owned by linkmux. Default 0xff00 (65280). */
    markMask: z.number().int().min(0x100).max(0x7fffffff).default(0xff00),
    /** Routing tables tableBase+1 … (one per uplink). Default 4200. */
    tableBase: z.number().int().min(1).max(2_000_000_000).default(4200),
    /** First ip rule priority; linkmux uses priority … priority + 2 × uplinks. Default 4200. */
    priority: z.number().int().min(1).max(32000).default(4200),
  })
  .superRefine((g, ctx) => {
    const names = new Set<string>();
    g.uplinks.forEach((u, i) => {
      const name = u.name ?? u.interface;
      if (names.has(name))
        ctx.addIssue({ code: 'custom', path: ['uplinks', i], message: `"${name}" is listed twice` });
      names.add(name);
      if (g.lan.includes(u.interface)) {
        ctx.addIssue({
          code: 'custom',
          path: ['uplinks', i, 'interface'],
          message: `${u.interface} is also in lan`,
        });
      }
    });
    g.rules.forEach((r, i) => {
      const target = r.action.startsWith('uplink:') ? r.action.slice('uplink:'.length) : undefined;
      if (target !== undefined && !names.has(target)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'action'],
          message: `no uplink is named ${target} (uplinks: ${[...names].join(', ') || 'none'})`,
        });
      }
    });
    if ((g.markBase & ~g.markMask) !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['markBase'],
        message: 'markBase must have no bit outside markMask',
      });
    }
  })
  .prefault({});

export const dnsSchema = z
  .strictObject({
    /**
     * Nameservers asked first, each query sent out of a healthy link: "1.1.1.1",
     * "9.9.9.9:53", "[2606:4700::1111]:53". Default [] (the system's only).
     */
    servers: z.array(nameserver).default([]),
    /** Also ask the system's nameservers (/etc/resolv.conf; systemd-resolved's upstreams). Default true. */
    system: z.boolean().default(true),
    /** Seconds before the next attempt (another link or server) joins a query. Default 1. */
    tryTimeout: duration(0.05, 30).default(1),
    /** Seconds a lookup may take in all, never more than connectTimeout. Default 5. */
    timeout: duration(0.1, 60).default(5),
  })
  .prefault({});

export const limitsSchema = z
  .strictObject({
    /**
     * Seconds a SOCKS5 client has from connecting to a complete request (greeting,
     * login, request); a node gives as long to the TLS handshake and again to the
     * SOCKS5 exchange inside it. Default 10.
     */
    handshakeTimeout: duration(0.1, 600).default(10),
    /** Seconds an HTTP proxy request's headers may take to arrive, trickled or not; then 408 and close. Default 10. */
    headersTimeout: duration(0.1, 600).default(10),
    /**
     * Seconds without a byte either way after which an established tunnel (SOCKS5,
     * HTTP CONNECT or forwarded exchange, node relay) is closed; 0 = never.
     * Default 7200 (2 h, like a NAT).
     */
    idleTimeout: duration(0, 30 * 24 * 3600).default(7200),
    /**
     * Client connections open at once, all front ends together; more are refused
     * (SOCKS5: closed, HTTP: 503). 0 = derived: (file descriptor limit − fdReserve) / 2. Default 0.
     */
    maxConnections: count(0, 10_000_000).default(0),
    /** Client connections open at once from one address; 0 = half of maxConnections. Default 0. */
    maxConnectionsPerClient: count(0, 10_000_000).default(0),
    /** File descriptors kept for the control API, health probes and DNS; 0 = derived: limit / 8, 64 to 4096. Default 0. */
    fdReserve: count(0, 10_000_000).default(0),
    /** Seconds between two log lines about failed logins from one client address. Default 60. */
    loginLogInterval: duration(1, 24 * 3600).default(60),
  })
  .prefault({});

/** aria2's JSON-RPC on `linkmux up` (AriaNg, download extensions): its own block. */
export const rpcSchema = z
  .strictObject({
    /** Serve the aria2 JSON-RPC (`up --rpc` sets it). Default false. */
    enabled: z.boolean().default(false),
    /** Its own listener, HOST:PORT (aria2's 6800), or false: only /jsonrpc on the control address. Default "127.0.0.1:6800". */
    listen: listenAddress(false).default('127.0.0.1:6800'),
    /** Clients send "token:SECRET" first, as to aria2 --rpc-secret. Required beyond loopback, and for other origins (CORS). Never printed. */
    secret: z.string().min(1).max(1024).optional(),
    /** Default download directory. Default: ~/Downloads. */
    dir: z.string().trim().min(1).optional(),
    /** Downloads running at once; the rest wait in the queue. Default 5. */
    maxConcurrentDownloads: count(1, 100).default(5),
    /** Connections per link of a download unless the client sends split / max-connection-per-server. Default 1. */
    connectionsPerLink: count(1, 16).default(1),
    /** Finished results kept in the list (aria2's max-download-result). Default 1000. */
    maxResults: count(0, 100_000).default(1000),
    /** Where the download list (rpc-session.json) lives. Default: /var/lib/linkmux as root, else ~/.local/state/linkmux. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .superRefine((rpc, ctx) => {
    if (rpc.listen === false || rpc.secret !== undefined) return;
    const hp = parseHostPort(rpc.listen);
    if (hp && !isLoopbackHost(hp.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message:
          `${rpc.listen} is reachable from other machines and no rpc.secret is set, so anyone could make ` +
          'this machine download files: set rpc.secret, or listen on 127.0.0.1',
      });
    }
  })
  .prefault({});

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
