/**
 * The I/O behind `linkmux service`: checks the config, renders the unit
 * (unit-file.ts), writes it under /etc/systemd/system and drives systemctl.
 * Every file goes through `deps.root` and every command through `deps.runner`,
 * so the tests use a temp directory and a FakeRunner; nothing here touches the
 * real systemd unless the CLI passes "/" and an ExecRunner.
 *
 * Guarantees: every refusal (not root, no systemd, a missing or invalid config,
 * a missing node or main.js) happens before the first change; the unit file is
 * written atomically (temp file, rename), so systemd never reads half of it;
 * install twice is harmless (the second run only re-enables, or restarts when
 * the unit changed); uninstall of a unit that is not there changes nothing and
 * runs nothing.
 */
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import type { Runner } from '../util/runner.js';
import { DEFAULT_CONFIG_FILE } from '../config/example.js';
import {
  RUNTIME_DIR,
  STATE_DIR,
  bindNeedsNetRaw,
  capabilitiesFor,
  renderUnit,
  unitName,
} from './unit-file.js';
import type { ServiceKind, UnitSpec } from './unit-file.js';

export const UNIT_DIR = '/etc/systemd/system';
/** Hidden from the service by PrivateTmp=yes. */
const TMP_DIRS = ['/tmp', '/var/tmp'];

export interface ServiceDeps {
  runner: Runner;
  /** Prefix of every system path written or probed ("/" for real). */
  root: string;
  /** Whether this process may write units and run systemctl (uid 0). */
  isRoot: boolean;
  /** Where `name` is found on PATH, or undefined. */
  findCommand: (name: string) => string | undefined;
  /** process.execPath in production. */
  nodePath: string;
  /** The CLI's own main.js, absolute. */
  mainPath: string;
  /** Relative config paths are resolved against it. */
  cwd: string;
  /** `uname -r` (os.release()): decides whether SO_BINDTODEVICE needs CAP_NET_RAW. */
  kernelRelease: string;
  /** One progress line (stderr in the CLI). */
  log: (line: string) => void;
  /** Directories the service does not see (PrivateTmp) and boot empties. Default /tmp, /var/tmp. */
  tmpDirs?: readonly string[];
}

export interface PreparedUnit {
  name: string;
  text: string;
  /** The absolute config path the unit uses, or undefined (defaults). */
  configPath: string | undefined;
  /** Whether the config was found in the current directory rather than given with -c. */
  configFromCwd: boolean;
}

/**
 * Resolves and checks the config, then renders the unit. The config is the one
 * `linkmux KIND` would use if run here: -c FILE, else ./linkmux.yaml when it
 * exists (the service's own working directory is /, so it is made absolute).
 */
export async function prepareUnit(
  kind: ServiceKind,
  configArg: string | undefined,
  deps: Pick<ServiceDeps, 'nodePath' | 'mainPath' | 'cwd' | 'kernelRelease' | 'tmpDirs' | 'log'>,
  /** 'print' only shows the unit: a path the service could not use is a warning, not a refusal. */
  mode: 'install' | 'print' = 'install',
): Promise<PreparedUnit> {
  const refuse = (err: LinkmuxError) => {
    if (mode === 'install') throw err;
    deps.log(`warning: installed as it is, this unit would not start: ${err.message}`);
  };
  let configPath: string | undefined;
  let configFromCwd = false;
  if (configArg !== undefined) {
    configPath = path.resolve(deps.cwd, configArg);
    if (!isFile(configPath)) {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONFIG',
        `config file ${configPath} does not exist${configArg === configPath ? '' : ` (-c ${configArg}, from ${deps.cwd})`}: ` +
          'give the path of an existing file (`linkmux config init` writes one), or leave -c out for the defaults',
      );
    }
  } else {
    const here = path.join(deps.cwd, DEFAULT_CONFIG_FILE);
    if (isFile(here)) {
      configPath = here;
      configFromCwd = true;
    }
  }
  // Parsed now so a typo fails here, not in a unit that restarts every 5 s.
  const config = configPath !== undefined ? await loadConfigFile(configPath) : undefined;
  if (kind === 'gateway' && (config === undefined || config.gateway.lan.length === 0)) {
    throw new LinkmuxError(
      'LINKMUX_ERR_CONFIG',
      `the gateway needs a config with a gateway: section (lan and uplinks)${configPath ? `, and ${configPath} has none` : ''}: ` +
        'give it with -c (see `linkmux gateway --help`)',
    );
  }
  for (const [what, p] of [
    ['node', deps.nodePath],
    ['the linkmux CLI', deps.mainPath],
  ] as const) {
    if (!path.isAbsolute(p) || !isFile(p)) {
      throw new LinkmuxError('LINKMUX_ERR_IO', `${what} is not at ${p}: reinstall linkmux, then try again`);
    }
  }
  const tmpDirs = deps.tmpDirs ?? TMP_DIRS;
  for (const p of [deps.nodePath, deps.mainPath, configPath]) {
    if (p !== undefined && tmpDirs.some((t) => p.startsWith(`${t}/`))) {
      refuse(
        new LinkmuxError(
          p === configPath ? 'LINKMUX_ERR_CONFIG' : 'LINKMUX_ERR_IO',
          `${p} is in a temporary directory, which the service does not see (PrivateTmp=yes) ` +
            'and which is emptied at boot: move it (a config to /etc/linkmux/, say), then try again',
        ),
      );
    }
  }
  for (const p of [deps.nodePath, deps.mainPath, configPath]) {
    const problem = p === undefined ? undefined : unreachableForService(p, statSync);
    if (problem !== undefined) {
      refuse(
        new LinkmuxError(
          p === configPath ? 'LINKMUX_ERR_CONFIG' : 'LINKMUX_ERR_IO',
          `the service runs as root without CAP_DAC_OVERRIDE, so it could not read ${p}: ${problem}. ` +
            'Move it out of a private home directory (install node and linkmux under /usr/local, a config in /etc/linkmux/), ' +
            'or make it readable',
        ),
      );
    }
  }
  const spec: UnitSpec = {
    kind,
    nodePath: deps.nodePath,
    mainPath: deps.mainPath,
    configPath,
    documentation: documentationUrl(deps.mainPath),
    extraWritable: config ? extraWritable(kind, config) : [],
    capabilities: capabilitiesFor(kind, {
      bindNeedsNetRaw: bindNeedsNetRaw(deps.kernelRelease),
      lowPorts: config ? listensBelow1024(kind, config) : false,
    }),
    kernel: deps.kernelRelease,
  };
  return { name: unitName(kind), text: renderUnit(spec), configPath, configFromCwd };
}

/** Writes the unit, reloads systemd and enables and starts the service. */
export async function installService(
  kind: ServiceKind,
  configArg: string | undefined,
  deps: ServiceDeps,
): Promise<PreparedUnit> {
  const unit = await prepareUnit(kind, configArg, deps);
  checkCanManage('install', kind, deps);
  const file = unitPath(deps.root, unit.name);
  const before = await readFile(file, 'utf8').catch(() => undefined);
  if (before !== unit.text) {
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.tmp-${process.pid}`;
      await writeFile(tmp, unit.text, { mode: 0o644 });
      await rename(tmp, file);
    } catch (err) {
      throw new LinkmuxError('LINKMUX_ERR_IO', `cannot write ${file}: ${describe(err)}`, { cause: err });
    }
  }
  const systemctl = (...args: string[]) => deps.runner.run('systemctl', args);
  await systemctl('daemon-reload');
  await systemctl('enable', '--now', unit.name);
  // enable --now leaves a running service alone: restart it so a changed unit (new
  // config path, new linkmux) takes effect now rather than at the next boot.
  if (before !== undefined && before !== unit.text) await systemctl('restart', unit.name);
  const state = before === undefined ? 'installed' : before === unit.text ? 'unchanged' : 'updated';
  deps.log(`${unit.name}: ${state} in ${file}, enabled and started`);
  deps.log(`config: ${unit.configPath ?? 'defaults (no -c, no ./linkmux.yaml)'}`);
  deps.log(`logs: journalctl -u ${unit.name} -f; state: systemctl status ${unit.name}`);
  return unit;
}

/** Stops, disables and removes the unit, then reloads systemd. Nothing to do when it is absent. */
export async function uninstallService(kind: ServiceKind, deps: ServiceDeps): Promise<boolean> {
  checkCanManage('uninstall', kind, deps);
  const name = unitName(kind);
  const file = unitPath(deps.root, name);
  if (!existsSync(file)) {
    deps.log(`${name}: not installed (no ${file}); nothing to do`);
    return false;
  }
  const systemctl = (...args: string[]) => deps.runner.run('systemctl', args);
  // disable --now stops it too; for the gateway, ExecStopPost removes its rules.
  await systemctl('disable', '--now', name);
  try {
    await rm(file, { force: true });
  } catch (err) {
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot remove ${file}: ${describe(err)}`, { cause: err });
  }
  await systemctl('daemon-reload');
  deps.log(
    `${name}: stopped, disabled and removed; ${STATE_DIR} is kept (delete it to forget the node identity)`,
  );
  return true;
}

function checkCanManage(verb: 'install' | 'uninstall', kind: ServiceKind, deps: ServiceDeps): void {
  if (!deps.isRoot) {
    throw new LinkmuxError(
      'LINKMUX_ERR_NOT_ROOT',
      `linkmux service ${verb} writes to ${UNIT_DIR} and runs systemctl: run it as root ` +
        `(sudo "$(command -v linkmux)" service ${verb} ${kind} …)` +
        (verb === 'install' ? `, or only see the unit with \`linkmux service install ${kind} --print\`` : ''),
    );
  }
  if (deps.findCommand('systemctl') === undefined) {
    throw new LinkmuxError(
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      'systemctl was not found: this machine does not run systemd. ' +
        `Print the unit with \`linkmux service install ${kind} --print\` and adapt it to your init system`,
    );
  }
  // sd_booted(): systemd is PID 1 exactly when /run/systemd/system exists (not in most containers).
  if (!existsSync(path.join(deps.root, 'run/systemd/system'))) {
    throw new LinkmuxError(
      'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
      'systemctl is installed but systemd is not running here (a container or another init system?). ' +
        `Print the unit with \`linkmux service install ${kind} --print\` and start linkmux your own way`,
    );
  }
}

function unitPath(root: string, name: string): string {
  return path.join(root, UNIT_DIR, name);
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch (err) {
    if (systemCode(err) === 'ENOENT' || systemCode(err) === 'ENOTDIR') return false;
    throw new LinkmuxError('LINKMUX_ERR_IO', `cannot read ${p}: ${describe(err)}`, { cause: err });
  }
}

/** file: URL of the README shipped beside the CLI (the package root is the first parent with package.json). */
function documentationUrl(mainPath: string): string {
  for (let dir = path.dirname(mainPath); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return `file:${path.join(dir, 'README.md')}`;
    if (path.dirname(dir) === dir) return 'man:systemd.exec(5)';
  }
}

/** What this kind writes outside the state and runtime directories. */
function extraWritable(kind: ServiceKind, config: Config): string[] {
  const dirs: string[] = [];
  const nodeRuns = kind === 'node' || (kind === 'up' && config.node.enabled);
  const stateDir = config.node.stateDir;
  if (nodeRuns && stateDir !== undefined && path.resolve(stateDir) !== STATE_DIR) {
    dirs.push(path.resolve(stateDir));
  }
  const control = config.listen.control;
  if (typeof control === 'string' && control.startsWith('/')) {
    const dir = path.dirname(control);
    if (dir !== RUNTIME_DIR && dir !== STATE_DIR) dirs.push(dir);
  }
  return dirs;
}

/** Whether the daemon of this kind would listen on a port below 1024 (CAP_NET_BIND_SERVICE). */
function listensBelow1024(kind: ServiceKind, config: Config): boolean {
  const addrs: Array<string | false> = [config.listen.control];
  if (kind === 'up') addrs.push(config.listen.socks, config.listen.http);
  if (kind === 'node' || (kind === 'up' && config.node.enabled)) addrs.push(config.node.listen);
  return addrs.some((a) => {
    if (typeof a !== 'string' || a.startsWith('/')) return false;
    const port = Number(/:(\d+)$/.exec(a)?.[1]);
    return port > 0 && port < 1024;
  });
}

type StatFn = (p: string) => { uid: number; gid: number; mode: number; isDirectory(): boolean };

/**
 * Why root without CAP_DAC_OVERRIDE (the unit's bounding set) could not read
 * `file`, or undefined when it can: every parent must let uid 0 / gid 0 search
 * it, and the file must be readable. A home directory of mode 0750 or 0700
 * (Ubuntu's default since 21.04) holding an nvm node is the usual case.
 */
export function unreachableForService(file: string, stat: StatFn): string | undefined {
  const allowed = (st: { uid: number; gid: number; mode: number }, bit: number) =>
    st.uid === 0
      ? (st.mode & (bit << 6)) !== 0
      : st.gid === 0
        ? (st.mode & (bit << 3)) !== 0
        : (st.mode & bit) !== 0;
  const describeMode = (p: string, st: { uid: number; mode: number }) =>
    `${p} is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')} owned by uid ${st.uid}`;
  const parts = path.resolve(file).split(path.sep).filter(Boolean);
  for (let i = 0; i < parts.length; i += 1) {
    const p = `/${parts.slice(0, i + 1).join('/')}`;
    const st = stat(p);
    if (i < parts.length - 1 && !allowed(st, 0o1)) return describeMode(p, st);
    if (i === parts.length - 1 && !allowed(st, 0o4)) return describeMode(p, st);
  }
  return undefined;
}
