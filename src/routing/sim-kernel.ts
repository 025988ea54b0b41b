/**
 * SimKernel: a simulated kernel behind the Runner seam, for tests of anything
 * that reads or changes policy routing (route setup, the gateway, later MPTCP
 * endpoints). It holds ip rules and routes of both families and a table of
 * names (/etc/iproute2/rt_tables), and answers `ip` the way iproute2 6.1 on
 * Linux 6.x does:
 *
 *   ip [-j] [-N] -4|-6 rule show            JSON; tables by name unless -N
 *   ip [-j] [-N] -4|-6 route show table all  JSON; main's routes carry no "table"
 *   ip -4|-6 rule add|del …                 add of an identical rule: File exists;
 *                                           del: the first rule matching every selector given
 *   ip -4|-6 route replace|del|flush …      flush of an empty table: FIB table does not exist
 *
 * `lines()` prints the state as `ip rule` / `ip route` lines, so a test can
 * compare a whole kernel with expected text. Anything else it is asked throws.
 */
import { LinkmuxError } from '../util/errors.js';
import type { RunResult, Runner } from '../util/runner.js';
import { hex, hostLength, type Family } from './spec.js';

export interface SimRule {
  family: Family;
  priority: number;
  /** "address/prefix"; absent: from all. */
  from?: string;
  fwmark?: { mark: number; mask: number };
  /** Absent for rules that look up no table (their action is in `extra`). */
  table?: number;
  suppressPrefixLength?: number;
  /** Other JSON keys ip prints for this rule (not, iif, action …): selectors linkmux never sets. */
  extra?: Record<string, unknown>;
}

export interface SimRoute {
  family: Family;
  table: number;
  /** 'default' or "network/prefix". */
  dst: string;
  dev: string;
  gateway?: string;
  src?: string;
}

export interface SimKernelOptions {
  /** rt_tables entries beyond default/main/local (253/254/255). */
  tableNames?: Record<number, string>;
  /** Rules besides the kernel's own (local 0, main 32766, default 32767). */
  rules?: SimRule[];
  routes?: SimRoute[];
}

const KERNEL_TABLES: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' };

export class SimKernel implements Runner {
  rules: SimRule[];
  routes: SimRoute[];
  readonly tableNames: Map<number, string>;
  /** Every command that changed (or tried to change) the state, as "ip …" lines. */
  readonly changes: string[] = [];

  constructor(opts: SimKernelOptions = {}) {
    this.tableNames = new Map(
      Object.entries({ ...KERNEL_TABLES, ...opts.tableNames }).map(([id, name]) => [Number(id), name]),
    );
    const kernel = (family: Family): SimRule[] => [
      { family, priority: 0, table: 255 },
      { family, priority: 32766, table: 254 },
      ...(family === 4 ? [{ family, priority: 32767, table: 253 }] : []),
    ];
    this.rules = [...kernel(4), ...kernel(6), ...(opts.rules ?? [])];
    this.routes = [...(opts.routes ?? [])];
  }

  async run(cmd: string, args: readonly string[]): Promise<RunResult> {
    const line = [cmd, ...args].join(' ');
    if (cmd !== 'ip') throw new Error(`SimKernel cannot run: ${line}`);
    const a = [...args];
    const flags = new Set<string>();
    while (a[0]?.startsWith('-')) flags.add(a.shift() as string);
    const family: Family = flags.has('-6') ? 6 : 4;
    const numeric = flags.has('-N');
    const [object, verb, ...rest] = a;
    if (verb === 'show') {
      if (!flags.has('-j')) throw new Error(`SimKernel answers only -j queries: ${line}`);
      if (object === 'rule') return ok(JSON.stringify(this.showRules(family, numeric)));
      if (object === 'route' && rest.join(' ') === 'table all') {
        return ok(JSON.stringify(this.showRoutes(family, numeric)));
      }
      throw new Error(`SimKernel cannot run: ${line}`);
    }
    this.changes.push(line);
    if (object === 'rule' && (verb === 'add' || verb === 'del')) return this.rule(verb, family, rest, line);
    if (object === 'route' && (verb === 'replace' || verb === 'del' || verb === 'flush')) {
      return this.route(verb, family, rest, line);
    }
    throw new Error(`SimKernel cannot run: ${line}`);
  }

  /** The state as `ip rule` and `ip route` lines, family 4 first, rules by priority. */
  lines(): string[] {
    const rules = [...this.rules]
      .sort((x, y) => x.family - y.family || x.priority - y.priority)
      .map((r) => {
        const parts = [`-${r.family} rule ${r.priority}:`, `from ${r.from ?? 'all'}`];
        if (r.fwmark) parts.push(`fwmark ${hex(r.fwmark.mark)}/${hex(r.fwmark.mask)}`);
        if (r.table !== undefined) parts.push(`lookup ${this.tableName(r.table)}`);
        if (r.suppressPrefixLength !== undefined)
          parts.push(`suppress_prefixlength ${r.suppressPrefixLength}`);
        if (r.extra) parts.push(JSON.stringify(r.extra));
        return parts.join(' ');
      });
    const routes = this.routes
      .map((r) =>
        [
          `-${r.family} route table ${this.tableName(r.table)}: ${r.dst}`,
          ...(r.gateway ? [`via ${r.gateway}`] : []),
          `dev ${r.dev}`,
          ...(r.src ? [`src ${r.src}`] : []),
        ].join(' '),
      )
      .sort();
    return [...rules, ...routes];
  }

  private tableName(id: number): string {
    return this.tableNames.get(id) ?? String(id);
  }

  private tableText(id: number, numeric: boolean): string {
    return numeric ? String(id) : this.tableName(id);
  }

  private showRules(family: Family, numeric: boolean): unknown[] {
    return this.rules
      .filter((r) => r.family === family)
      .sort((x, y) => x.priority - y.priority)
      .map((r) => {
        const [src = 'all', len] = r.from?.split('/') ?? [];
        const srclen = len === undefined ? undefined : Number(len);
        return {
          priority: r.priority,
          src: srclen === 0 ? 'all' : src,
          ...(srclen !== undefined && srclen !== 0 && srclen !== hostLength(family) ? { srclen } : {}),
          ...(r.fwmark
            ? {
                fwmark: hex(r.fwmark.mark),
                ...(r.fwmark.mask !== 0xffffffff ? { fwmask: hex(r.fwmark.mask) } : {}),
              }
            : {}),
          ...r.extra,
          ...(r.table !== undefined ? { table: this.tableText(r.table, numeric) } : {}),
          ...(r.suppressPrefixLength !== undefined ? { suppress_prefixlen: r.suppressPrefixLength } : {}),
        };
      });
  }

  private showRoutes(family: Family, numeric: boolean): unknown[] {
    return this.routes
      .filter((r) => r.family === family)
      .map((r) => {
        const [net, len] = r.dst.split('/');
        const host = len !== undefined && Number(len) === hostLength(family);
        return {
          dst: host ? net : r.dst,
          ...(r.gateway ? { gateway: r.gateway } : {}),
          dev: r.dev,
          ...(r.table !== 254 ? { table: this.tableText(r.table, numeric) } : {}),
          ...(r.gateway || family === 6 ? {} : { scope: numeric ? '253' : 'link' }),
          ...(r.src ? { prefsrc: r.src } : {}),
          flags: [],
        };
      });
  }

  private tableArg(text: string | undefined, line: string): number {
    if (text === undefined) throw fail(line, 'Error: argument is wrong');
    if (/^\d+$/.test(text)) return Number(text);
    for (const [id, name] of this.tableNames) if (name === text) return id;
    throw fail(line, `Error: argument "${text}" is wrong: invalid table ID`);
  }

  private rule(verb: 'add' | 'del', family: Family, args: string[], line: string): RunResult {
    const given: SimRule = { family, priority: -1 };
    for (let i = 0; i < args.length; i += 2) {
      const [key, value] = [args[i], args[i + 1]];
      if (value === undefined) throw fail(line, `Error: argument "${key}" needs a value`);
      if (key === 'priority' || key === 'pref' || key === 'preference') given.priority = Number(value);
      else if (key === 'from') given.from = value === 'all' ? undefined : withLength(value, family);
      else if (key === 'fwmark') {
        const [mark = '', mask] = value.split('/');
        given.fwmark = {
          mark: Number(mark) >>> 0,
          mask: mask === undefined ? 0xffffffff : Number(mask) >>> 0,
        };
      } else if (key === 'lookup' || key === 'table') given.table = this.tableArg(value, line);
      else if (key === 'suppress_prefixlength') given.suppressPrefixLength = Number(value);
      else throw new Error(`SimKernel: rule selector ${key} is not simulated (${line})`);
    }
    const same = (r: SimRule) =>
      r.family === family &&
      (given.priority < 0 || r.priority === given.priority) &&
      (given.from === undefined || r.from === given.from) &&
      (given.fwmark === undefined ||
        (r.fwmark?.mark === given.fwmark.mark && r.fwmark.mask === given.fwmark.mask)) &&
      (given.table === undefined || r.table === given.table) &&
      (given.suppressPrefixLength === undefined || r.suppressPrefixLength === given.suppressPrefixLength);
    if (verb === 'add') {
      const rule: SimRule = { ...given, priority: given.priority < 0 ? 0 : given.priority };
      const key = (r: SimRule) =>
        JSON.stringify([r.family, r.priority, r.from, r.fwmark, r.table, r.suppressPrefixLength, r.extra]);
      const identical = this.rules.some((r) => key(r) === key(rule));
      if (identical) throw fail(line, 'RTNETLINK answers: File exists');
      this.rules.push(rule);
      return ok('');
    }
    const i = this.rules.findIndex(same);
    if (i < 0) throw fail(line, 'RTNETLINK answers: No such file or directory');
    this.rules.splice(i, 1);
    return ok('');
  }

  private route(verb: 'replace' | 'del' | 'flush', family: Family, args: string[], line: string): RunResult {
    const opt = (name: string) => {
      const i = args.indexOf(name);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const table = this.tableArg(opt('table') ?? 'main', line);
    if (verb === 'flush') {
      const before = this.routes.length;
      this.routes = this.routes.filter((r) => !(r.family === family && r.table === table));
      if (before === this.routes.length) throw fail(line, `Error: ipv${family}: FIB table does not exist.`);
      return ok('');
    }
    const dst = args[0] === 'default' ? 'default' : withLength(args[0] ?? '', family);
    const slot = (r: SimRoute) => r.family === family && r.table === table && r.dst === dst;
    if (verb === 'del') {
      const via = opt('via');
      const dev = opt('dev');
      const i = this.routes.findIndex(
        (r) => slot(r) && (dev === undefined || r.dev === dev) && (via === undefined || r.gateway === via),
      );
      if (i < 0) throw fail(line, 'RTNETLINK answers: No such process');
      this.routes.splice(i, 1);
      return ok('');
    }
    const dev = opt('dev');
    if (dev === undefined) throw fail(line, 'Error: no device given');
    const via = opt('via');
    const src = opt('src');
    const route: SimRoute = {
      family,
      table,
      dst,
      dev,
      ...(via !== undefined ? { gateway: via } : {}),
      ...(src !== undefined ? { src } : {}),
    };
    const i = this.routes.findIndex(slot);
    if (i >= 0) this.routes[i] = route;
    else this.routes.push(route);
    return ok('');
  }
}

function withLength(text: string, family: Family): string {
  return text.includes('/') ? text : `${text}/${hostLength(family)}`;
}

function ok(stdout: string): RunResult {
  return { stdout, stderr: '' };
}

function fail(line: string, why: string): LinkmuxError {
  return new LinkmuxError('LINKMUX_ERR_COMMAND_FAILED', `${line} failed: ${why}`);
}
