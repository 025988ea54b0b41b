/**
 * The config as the code uses it: durations in milliseconds, listen addresses
 * parsed, probe targets as `ProbeTarget`s, health settings as the monitor's
 * `HealthConfig`, policy options as the policy factory's. Converting here, once,
 * keeps "seconds" out of every consumer; `Config` stays in the user's units so
 * `linkmux config show` prints what the file says. Pure and total: a `Config`
 * has been validated, so nothing here can fail.
 */
import type { HealthConfig, ProbeTarget } from '../health/config.js';
import { parseProbeTarget } from '../health/probe-target.js';
import type { PolicyName, PolicyOptions } from '../scheduler/policies.js';
import type { LogLevel } from '../util/logger.js';
import type { HostPort, RuleActionText } from './fields.js';
import { parseHostPort } from './fields.js';
import type { Config } from './schema.js';

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
  links: readonly string[];
  bind: 'auto' | 'device' | 'address';
  policy: PolicyName;
  policyOptions: PolicyOptions;
  weights: Readonly<Record<string, number>>;
  connectTimeoutMs: number;
  failover: { attempts: number; staggerMs: number };
  health: HealthConfig;
  rules: readonly RuntimeRule[];
  privateDirect: boolean;
  drainTimeoutMs: number;
  log: LogLevel;
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
    links: [...config.links],
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
      targets: config.health.targets.map(toTarget),
    },
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
    log: config.log,
  });
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

function toTarget(text: string): ProbeTarget {
  const r = parseProbeTarget(text);
  // Validated by the schema; a failure here would be a bug in one of the two parsers.
  if (!r.ok) throw new Error(`unparsable probe target survived validation: ${r.message}`);
  return r.target;
}
