/**
 * A raw SOCKS5 CONNECT (no auth) run inside a namespace, printing the server's
 * reply code, so a netns test can read it exactly (curl folds several codes into
 * one message):
 *
 *   node dist/test/helpers/socks-reply-main.js PROXY_HOST PROXY_PORT DEST_HOST DEST_PORT
 *
 * DEST_HOST is sent as ATYP 4 when it is an IPv6 literal, ATYP 1 for IPv4, else as
 * a name (ATYP 3). Prints `rep=0xNN` and exits 0; exit 1 when the proxy closed or
 * said nothing within 15 s.
 */
import net from 'node:net';

const [proxyHost, proxyPort, host, port] = process.argv.slice(2);
if (!proxyHost || !proxyPort || !host || !port) {
  process.stderr.write('usage: socks-reply-main PROXY_HOST PROXY_PORT DEST_HOST DEST_PORT\n');
  process.exit(64);
}

function address(h: string): Buffer {
  if (net.isIPv4(h)) return Buffer.from([1, ...h.split('.').map(Number)]);
  if (net.isIPv6(h)) {
    const s = new net.SocketAddress({ address: h, family: 'ipv6' }).address;
    const groups = expand6(s);
    const b = Buffer.alloc(17);
    b[0] = 4;
    groups.forEach((g, i) => b.writeUInt16BE(g, 1 + 2 * i));
    return b;
  }
  return Buffer.concat([Buffer.from([3, Buffer.byteLength(h)]), Buffer.from(h)]);
}

function expand6(s: string): number[] {
  const [head = '', tail] = s.split('::');
  const a = head ? head.split(':') : [];
  const b = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array(8 - a.length - b.length).fill('0');
  return [...a, ...fill, ...b].map((g: string) => parseInt(g, 16));
}

const dst = Buffer.concat([Buffer.from([5, 1, 0]), address(host), Buffer.alloc(2)]);
dst.writeUInt16BE(Number(port), dst.length - 2);
const timer = setTimeout(() => {
  process.stderr.write('no SOCKS5 reply within 15 s\n');
  process.exit(1);
}, 15_000);
let buf = Buffer.alloc(0);
let greeted = false;
const s = net.connect({ host: proxyHost, port: Number(proxyPort) }, () => s.write(Buffer.from([5, 1, 0])));
s.on('data', (d: Buffer) => {
  buf = Buffer.concat([buf, d]);
  if (!greeted && buf.length >= 2) {
    greeted = true;
    buf = buf.subarray(2);
    s.write(dst);
  }
  if (greeted && buf.length >= 2) {
    clearTimeout(timer);
    process.stdout.write(`rep=0x${(buf[1] ?? 0).toString(16).padStart(2, '0')}\n`);
    s.destroy();
    process.exit(0);
  }
});
s.on('error', (err) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
s.on('close', () => {
  process.stderr.write(`closed before a reply (have ${buf.toString('hex')})\n`);
  process.exit(1);
});
