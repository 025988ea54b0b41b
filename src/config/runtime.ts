/**
 * The config as the code uses it: durations in milliseconds, listen addresses
 * parsed, probe targets as `ProbeTarget`s, health settings as the monitor's
 * `HealthConfig`, policy options as the policy factory's. Converting here, once,
 * keeps "seconds" out of every consumer; `Config` stays in the user's units so
 * `linkmux config show` prints what the file says. Pure and total: a `Config`
 * has been validated, so nothing here can fail.
 */
import { defaultProbeTargets, type HealthConfig, type ProbeTarget } from '../health/config.js';
import { parseProbeTarget } from '../health/probe-target.js';
import type { PolicyName, PolicyOptions } from '../scheduler/policies.js';
import type { LogLevel } from '../util/logger.js';
import type { RuleActionText } from './fields.js';
import { toNameserver } from './fields.js';
import type { HostPort } from '../net/address.js';
import { parseHostPort } from '../net/address.js';
import type { Config } from './schema.js';
import { configSchema } from './schema.js';
import { decodeJoinToken } from '../links/join-token.js';
import type { JoinToken } from '../links/join-token.js';
import { isSocks5LinkRequest, parseSocks5Link } from '../links/remote-links.js';
import type { Socks5LinkOptions } from '../links/socks5-link.js';

/** The node's settings as the code uses them. */
export interface RuntimeNode {
  enabled: boolean;
  /** 'lan': every private address of this machine, on `port`. */
  listen: { kind: 'lan'; port: number } | ({ kind: 'tcp' } & HostPort);
  advertise: string | undefined;
  name: string | undefined;
  allow: readonly string[];
  stateDir: string | undefined;
}

/** `server:` — the client's server token, and `linkmux server`'s own settings. */
export interface RuntimeServer {
  token: JoinToken | undefined;
  listen: HostPort;
  advertise: string | undefined;
  name: string | undefined;
  allow: readonly string[];
  stateDir: string | undefined;
}

/** Same shape as the control API's ControlAddress. */
export type ListenAddress = ({ kind: 'tcp' } & HostPort) | { kind: 'unix'; path: string };

/** A rule in the shape the proxy's RuleSet takes. */
export interface RuntimeRule {
  match: { domain?: string; cidr?: string; port?: number | string };
  action: RuleActionText;
}

export interface RuntimeConfig {
  listen: {
    socks: (ListenAddress & { kind: 'tcp' }) | undefined;
    http: (ListenAddress & { kind: 'tcp' }) | undefined;
    control: ListenAddress | undefined;
  };
  auth: { username: string; password: string } | undefined;
  /** Local interfaces named (names or addresses); [] = every usable uplink. */
  links: readonly string[];
  /** SOCKS5 upstreams used as links. */
  upstreams: readonly Socks5LinkOptions[];
  /** Nodes joined with their tokens. */
  join: readonly JoinToken[];
  node: RuntimeNode;
  server: RuntimeServer;
  bind: 'auto' | 'device' | 'address';
  policy: PolicyName;
  policyOptions: PolicyOptions;
  weights: Readonly<Record<string, number>>;
  connectTimeoutMs: number;
  failover: { attempts: number; staggerMs: number };
  /**
   * health.targets without the system's nameservers when the config leaves them
   * unset (`healthTargetsSet` false): the daemon adds those at start
   * (health/targets-at-start.ts), which reading a file makes no job for this pure module.
   */
  health: HealthConfig;
  dns: RuntimeDns;
  healthTargetsSet: boolean;
  rules: readonly RuntimeRule[];
  privateDirect: boolean;
  drainTimeoutMs: number;
  limits: RuntimeLimits;
  log: LogLevel;
  rpc: RuntimeRpc;
}

/** Deadlines in ms; caps as counts, 0 meaning "derive from the descriptor limit". */
export interface RuntimeLimits {
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  /** 0 = never. */
  idleTimeoutMs: number;
  maxConnections: number;
  maxPerClient: number;
  fdReserve: number;
  loginLogIntervalMs: number;
  /** The longest hold of a relayed transfer's reads (proxy/read-coalescing.ts); 0 = none. */
  relayHoldMs: number;
}

/** The aria2 JSON-RPC as the daemon takes it; undefined when disabled. */
export type RuntimeRpc =
  | {
      listen: (ListenAddress & { kind: 'tcp' }) | undefined;
      secret: string | undefined;
      dir: string | undefined;
      maxConcurrentDownloads: number;
      connectionsPerLink: number;
      maxResults: number;
      stateDir: string | undefined;
    }
  | undefined;

export interface RuntimeDns {
  servers: ReadonlyArray<{ address: string; port: number }>;
  system: boolean;
  perTryMs: number;
  /** Already capped by connectTimeoutMs. */
  totalMs: number;
}

const ms = (seconds: number) => Math.round(seconds * 1000);

export function toRuntime(config: Config): RuntimeConfig {
  return Object.freeze({
    listen: {
      socks: tcpListen(config.listen.socks),
      http: tcpListen(config.listen.http),
      control: controlListen(config.listen.control),
    },
    auth: config.auth ? { username: config.auth.username, password: config.auth.password } : undefined,
    links: config.links.filter((l) => !isSocks5LinkRequest(l)),
    upstreams: config.links.filter(isSocks5LinkRequest).map((l) => parseSocks5Link(l)),
    join: config.join.map((t) => decodeJoinToken(t)),
    node: toNode(config.node),
    server: {
      token: config.server.token !== undefined ? decodeJoinToken(config.server.token) : undefined,
      listen: parseHostPort(config.server.listen)!,
      advertise: config.server.advertise,
      name: config.server.name,
      allow: [...config.server.allow],
      stateDir: config.server.stateDir ?? config.node.stateDir,
    },
    bind: config.bind,
    policy: config.policy,
    policyOptions: { ttlMs: ms(config.sticky.ttl), fallback: config.sticky.fallback },
    weights: { ...config.weights },
    connectTimeoutMs: ms(config.connectTimeout),
    failover: { attempts: config.failover.attempts, staggerMs: ms(config.failover.stagger) },
    health: {
      intervalMs: ms(config.health.interval),
      timeoutMs: ms(config.health.timeout),
      failThreshold: config.health.failThreshold,
      riseThreshold: config.health.riseThreshold,
      slowRttMs: ms(config.health.slowRtt),
      targets: config.health.targets?.map(toTarget) ?? defaultProbeTargets([]),
    },
    dns: {
      servers: config.dns.servers.map(toNameserver),
      system: config.dns.system,
      perTryMs: ms(config.dns.tryTimeout),
      totalMs: Math.min(ms(config.dns.timeout), ms(config.connectTimeout)),
    },
    healthTargetsSet: config.health.targets !== undefined,
    rules: config.rules.map((r) => ({
      match: {
        ...(r.match.domain !== undefined ? { domain: r.match.domain } : {}),
        ...(r.match.cidr !== undefined ? { cidr: r.match.cidr } : {}),
        ...(r.match.port !== undefined ? { port: r.match.port } : {}),
      },
      action: r.action,
    })),
    privateDirect: config.privateDirect,
    drainTimeoutMs: ms(config.drainTimeout),
    limits: {
      handshakeTimeoutMs: ms(config.limits.handshakeTimeout),
      headersTimeoutMs: ms(config.limits.headersTimeout),
      idleTimeoutMs: ms(config.limits.idleTimeout),
      maxConnections: config.limits.maxConnections,
      maxPerClient: config.limits.maxConnectionsPerClient,
      fdReserve: config.limits.fdReserve,
      loginLogIntervalMs: ms(config.limits.loginLogInterval),
      relayHoldMs: ms(config.limits.relayHold),
    },
    log: config.log,
    rpc: config.rpc.enabled
      ? {
          listen: tcpListen(config.rpc.listen),
          secret: config.rpc.secret,
          dir: config.rpc.dir,
          maxConcurrentDownloads: config.rpc.maxConcurrentDownloads,
          connectionsPerLink: config.rpc.connectionsPerLink,
          maxResults: config.rpc.maxResults,
          stateDir: config.rpc.stateDir,
        }
      : undefined,
  });
}

/**
 * The schema's defaults as a RuntimeConfig, with `over` laid on top (frozen):
 * for tests and embedders that build a daemon without a config file. The
 * overrides are in runtime units (ms, parsed addresses) and are not validated:
 * the schema's checks (no open proxy among them) apply to configs users write.
 */
export function runtimeDefaults(over: Partial<RuntimeConfig> = {}): RuntimeConfig {
  return Object.freeze({ ...toRuntime(configSchema.parse({}) as Config), ...over });
}

function tcpListen(text: string | false): (ListenAddress & { kind: 'tcp' }) | undefined {
  if (text === false) return undefined;
  const hp = parseHostPort(text);
  return hp ? { kind: 'tcp', ...hp } : undefined;
}

function controlListen(text: string | false): ListenAddress | undefined {
  if (text === false) return undefined;
  return text.startsWith('/') ? { kind: 'unix', path: text } : tcpListen(text);
}

function toNode(node: Config['node']): RuntimeNode {
  const lan = /^lan:(\d+)$/.exec(node.listen);
  const hp = parseHostPort(node.listen);
  return {
    enabled: node.enabled,
    listen: lan ? { kind: 'lan', port: Number(lan[1]) } : { kind: 'tcp', host: hp!.host, port: hp!.port },
    advertise: node.advertise,
    name: node.name,
    allow: [...node.allow],
    stateDir: node.stateDir,
  };
}

function toTarget(text: string): ProbeTarget {
  const r = parseProbeTarget(text);
  // Validated by the schema; a failure here would be a bug in one of the two parsers.
  if (!r.ok) throw new Error(`unparsable probe target survived validation: ${r.message}`);
  return r.target;
}
