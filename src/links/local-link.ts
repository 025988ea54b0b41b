/**
 * LocalLink: one network interface of this machine used as a link.
 *
 * Every connection is forced out of the interface in one of two ways:
 * - 'device': SO_BINDTODEVICE on a socket made through FFI (Linux; picks the
 *   interface whatever the routing table says),
 * - 'address': bind the interface's source address. Enough on Windows and macOS
 *   (strong host model); on Linux it needs policy rules (`linkmux route setup`).
 * 'auto' picks 'device' on Linux when koffi loads and SO_BINDTODEVICE works on the
 * interface, else 'address' with one warning that says what is lost.
 *
 * Guarantees: names are resolved here and the socket connects to one IP literal
 * of a family the interface has; the AbortSignal and the timeout (10 s by
 * default, DNS included) destroy the half-open socket and reject with
 * LINKMUX_ERR_ABORTED / LINKMUX_ERR_TIMEOUT naming the link and destination;
 * stats count bytes of live and closed sockets without per-chunk listeners;
 * close() waits for open sockets to end, destroy() ends them at once; an EPERM
 * from SO_BINDTODEVICE switches this link to 'address' once, with one warning.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import type { OnReadOpts, Socket } from 'node:net';
import { LinkmuxError, describe, systemCode } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { silentLogger } from '../util/logger.js';
import type { ConnectOptions, Destination, Link, LinkCapabilities, LinkStats } from './link.js';
import type { NetInterface } from '../net/interfaces-types.js';
import { isLinkLocal } from '../net/link-local.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, LinkSockets, abortable, bindUdp } from './link-sockets.js';
import { connectThroughDevice, createBoundUdpSocket, probeBindToDevice } from '../net/bind-device.js';
import type { ResolvedAddress, Resolver } from '../net/resolve.js';
import { ipLiteral, systemResolver } from '../net/resolve.js';
import { formatHostPort, stripBrackets } from '../net/address.js';
import { ReadFeed } from '../net/read-feed.js';

export type BindMode = 'device' | 'address';
export type BindModeRequest = BindMode | 'auto';

export { DEFAULT_CONNECT_TIMEOUT_MS };

export interface LocalLinkOptions {
  /** How sockets are forced onto the interface (default 'auto'). */
  mode?: BindModeRequest;
  resolve?: Resolver;
  logger?: Logger;
  platform?: NodeJS.Platform;
  /** Opens a device-bound socket already connecting to ip:port (default: SO_BINDTODEVICE via koffi). */
  dialDevice?: (device: string, ip: string, port: number, onread?: OnReadOpts) => Socket;
  /** Why SO_BINDTODEVICE fails on a device (an errno name or 'UNAVAILABLE'), undefined when it works. */
  probeDevice?: (device: string) => string | undefined;
}

export interface BindModeChoice {
  mode: BindMode;
  /** Set when the user should learn what the choice costs. */
  warning?: string;
}

/**
 * Pure: the bind mode for a request, given the platform and the SO_BINDTODEVICE
 * probe result on the interface. Throws when 'device' is impossible here.
 */
export function chooseBindMode(
  requested: BindModeRequest,
  platform: NodeJS.Platform,
  device: string,
  probe: () => string | undefined,
): BindModeChoice {
  if (requested === 'address') return { mode: 'address' };
  if (platform !== 'linux') {
    if (requested === 'device') {
      throw new LinkmuxError(
        'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
        `binding sockets to an interface (${device}) needs SO_BINDTODEVICE, which only Linux has: ` +
          `use --bind address, which selects the interface on ${platform}`,
      );
    }
    return { mode: 'address', warning: nonLinuxWarning(platform) };
  }
  const problem = probe();
  if (problem === undefined) return { mode: 'device' };
  if (problem === 'EPERM') return { mode: 'address', warning: epermWarning(device) };
  if (problem === 'UNAVAILABLE') {
    if (requested === 'device') {
      throw new LinkmuxError(
        'LINKMUX_ERR_UNSUPPORTED_PLATFORM',
        `cannot bind sockets to ${device}: the koffi FFI module did not load on this machine; ` +
          `use --bind address and install policy rules with \`linkmux route setup --apply\``,
      );
    }
    return {
      mode: 'address',
      warning:
        `SO_BINDTODEVICE is unavailable (the koffi FFI module did not load), so link ${device} binds only its ` +
        `source address; on Linux that does not pick the interface: install policy rules with ` +
        `\`linkmux route setup --apply\` (as root)`,
    };
  }
  // ENODEV and the like: keep 'device' so that connect() reports the real problem.
  return { mode: 'device' };
}

function epermWarning(device: string): string {
  return (
    `not allowed to bind sockets to ${device} (SO_BINDTODEVICE: EPERM, needs CAP_NET_RAW), so this link ` +
    `binds only its source address, which on Linux does not pick the interface: run linkmux as root, ` +
    `or install policy rules with \`linkmux route setup --apply\``
  );
}

function nonLinuxWarning(platform: NodeJS.Platform): string {
  const how =
    platform === 'win32'
      ? 'Windows picks the interface from the source address (strong host model)'
      : platform === 'darwin'
        ? 'macOS picks the interface from the source address'
        : 'check that this system routes by source address';
  return `on ${platform} links bind only their source address (no SO_BINDTODEVICE): ${how}`;
}

/** One warning per logger and topic, however many links hit it. */
const warned = new WeakMap<Logger, Set<string>>();
function warnOnce(logger: Logger, topic: string, message: string): void {
  let topics = warned.get(logger);
  if (!topics) warned.set(logger, (topics = new Set()));
  if (topics.has(topic)) return;
  topics.add(topic);
  logger.warn(message);
}

export class LocalLink implements Link {
  readonly id: string;
  private currentMode: BindMode;
  private readonly resolve: Resolver;
  private readonly logger: Logger;
  private readonly dialDevice: (device: string, ip: string, port: number, onread?: OnReadOpts) => Socket;
  private readonly sockets: LinkSockets;
  private state: 'open' | 'closing' | 'destroyed' = 'open';

  constructor(
    readonly iface: NetInterface,
    opts: LocalLinkOptions = {},
  ) {
    this.id = iface.name;
    this.sockets = new LinkSockets(iface.name);
    this.resolve = opts.resolve ?? systemResolver;
    this.logger = opts.logger ?? silentLogger;
    this.dialDevice = opts.dialDevice ?? connectThroughDevice;
    const platform = opts.platform ?? process.platform;
    const choice = chooseBindMode(opts.mode ?? 'auto', platform, iface.name, () =>
      (opts.probeDevice ?? probeBindToDevice)(iface.name),
    );
    this.currentMode = choice.mode;
    if (choice.warning) {
      warnOnce(this.logger, platform === 'linux' ? `bind:${iface.name}` : 'bind:source-only', choice.warning);
    }
  }

  get capabilities(): LinkCapabilities {
    return { udp: true, remoteNames: false, families: this.families() };
  }

  /** The bind mode in force (it turns from 'device' to 'address' after an EPERM). */
  get mode(): BindMode {
    return this.currentMode;
  }

  get description(): string {
    const addrs = this.usableAddresses().map((a) => a.address);
    const via = this.iface.gateway ? ` via ${this.iface.gateway}` : '';
    const how = this.currentMode === 'device' ? 'SO_BINDTODEVICE' : 'source address';
    return `${this.id} ${addrs.join(' ') || '(no address)'}${via} (${how})`;
  }

  async connect(dst: Destination, opts: ConnectOptions = {}): Promise<Socket> {
    const where = formatHostPort(dst);
    if (this.state !== 'open') {
      throw new LinkmuxError(
        'LINKMUX_ERR_CONNECT',
        `link ${this.id} is shutting down; cannot connect to ${where}: pick another link`,
      );
    }
    let target: ResolvedAddress | undefined;
    return this.sockets.withDeadline(
      opts,
      where,
      'the link may be down or the server unreachable through it; check `linkmux links` or raise the timeout',
      async (signal) => {
        let socket: Socket | undefined;
        try {
          // An IP literal (what the dialer hands over) needs no resolver, nor a promise raced against the signal.
          target = ipLiteral(dst.host) ?? (await abortable(this.resolve(dst.host, this.families()), signal));
          socket = this.openSocket(target, dst.port, where);
          await once(socket, 'connect', { signal });
          if (socket.destroyed)
            throw new LinkmuxError('LINKMUX_ERR_ABORTED', `link ${this.id} was shut down`);
          this.sockets.opened(socket);
          return socket;
        } catch (err) {
          socket?.destroy();
          throw err;
        }
      },
      (err) => this.connectError(err, dst, target),
    );
  }

  async openUdp(family: 4 | 6): Promise<dgram.Socket> {
    if (this.state !== 'open') {
      throw new LinkmuxError('LINKMUX_ERR_CONNECT', `link ${this.id} is shutting down: pick another link`);
    }
    const local = this.usableAddresses().find((a) => a.family === family);
    if (!local) {
      throw new LinkmuxError('LINKMUX_ERR_CONNECT', `link ${this.id} has no IPv${family} address for UDP`);
    }
    const socket =
      this.currentMode === 'device'
        ? await createBoundUdpSocket(this.id, local.address)
        : await bindUdp(family, local.address);
    return this.sockets.trackUdp(socket);
  }

  stats(): LinkStats {
    return this.sockets.stats();
  }

  receivedBytes(): number {
    return this.sockets.bytesIn();
  }

  close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    return this.sockets.drain();
  }

  destroy(): void {
    this.state = 'destroyed';
    this.sockets.destroyAll();
  }

  /** Worked out again only when the interface's address list is replaced (every connect asks). */
  private usable:
    | { from: NetInterface['addresses']; addresses: NetInterface['addresses']; families: ReadonlySet<4 | 6> }
    | undefined;

  private usableAddresses(): NetInterface['addresses'] {
    return this.usableNow().addresses;
  }

  private families(): ReadonlySet<4 | 6> {
    return this.usableNow().families;
  }

  private usableNow() {
    const from = this.iface.addresses;
    if (this.usable?.from !== from) {
      const addresses = from.filter((a) => !isLinkLocal(a.address));
      this.usable = { from, addresses, families: new Set(addresses.map((a) => a.family)) };
    }
    return this.usable;
  }

  private openSocket(target: ResolvedAddress, port: number, where: string): Socket {
    const local = this.usableAddresses().find((a) => a.family === target.family);
    if (!local) {
      throw new LinkmuxError(
        'LINKMUX_ERR_NO_ROUTE',
        `link ${this.id} has no IPv${target.family} address, so it cannot reach ${where}: ` +
          `use a link with IPv${target.family} or a host name with other records`,
      );
    }
    // Reads into a reused buffer once a relay takes the socket (net/read-feed.ts).
    const feed = new ReadFeed();
    if (this.currentMode === 'device') {
      try {
        return this.track(feed.attach(this.dialDevice(this.id, target.address, port, feed.onread)));
      } catch (err) {
        if (!(err instanceof LinkmuxError && systemCode(err.cause) === 'EPERM')) throw err;
        this.currentMode = 'address';
        warnOnce(this.logger, `bind:${this.id}`, epermWarning(this.id));
      }
    }
    return this.track(
      feed.attach(
        net.connect({
          host: target.address,
          port,
          localAddress: local.address,
          family: target.family,
          autoSelectFamily: false,
          onread: feed.onread,
        }),
      ),
    );
  }

  private track(socket: Socket): Socket {
    return this.sockets.track(socket);
  }

  private connectError(err: unknown, dst: Destination, target: ResolvedAddress | undefined): LinkmuxError {
    if (err instanceof LinkmuxError) return err;
    const where = formatHostPort(dst);
    const to = target && target.address !== stripBrackets(dst.host) ? ` (${target.address})` : '';
    const code = systemCode(err);
    const prefix = `link ${this.id}: cannot connect to ${where}${to}`;
    switch (code) {
      case 'EMFILE':
      case 'ENFILE':
        return new LinkmuxError(
          'LINKMUX_ERR_NO_DESCRIPTORS',
          `${prefix}: this process is out of file descriptors (${code}); not a fault of the link`,
          { cause: err },
        );
      case 'ECONNREFUSED':
        // The destination answered: not the link's fault (the dialer's race ends here).
        return new LinkmuxError(
          'LINKMUX_ERR_REFUSED',
          `${prefix}: connection refused; check the host and port`,
          {
            cause: err,
          },
        );
      case 'ENETUNREACH':
      case 'EHOSTUNREACH':
        return new LinkmuxError(
          'LINKMUX_ERR_CONNECT',
          `${prefix}: no route (${code}); check that ${this.id} is connected and has a default route ` +
            `(\`linkmux links\`)`,
          { cause: err },
        );
      case 'EADDRNOTAVAIL':
        return new LinkmuxError(
          'LINKMUX_ERR_CONNECT',
          `${prefix}: the interface's address changed (${code}); rerun so linkmux picks up the new address`,
          { cause: err },
        );
      case 'ETIMEDOUT':
        return new LinkmuxError('LINKMUX_ERR_TIMEOUT', `${prefix}: the kernel gave up waiting (${code})`, {
          cause: err,
        });
      default:
        return new LinkmuxError('LINKMUX_ERR_CONNECT', `${prefix}: ${describe(err)}`, { cause: err });
    }
  }
}
