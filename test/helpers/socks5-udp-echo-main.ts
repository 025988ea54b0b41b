/**
 * A SOCKS5 UDP ASSOCIATE client, run as a process inside a testbed namespace:
 *
 *   node socks5-udp-echo-main.js SOCKS_HOST:PORT TARGET_IP:PORT COUNT SIZE
 *
 * Opens the association, sends COUNT numbered datagrams of SIZE bytes to the
 * target (paced, well under the testbed's shaped rate) and counts the echoes that
 * come back through the relay with the right source and payload. Prints
 * `{"sent":N,"echoed":M}` and exits 0; exits 1 with a message on a protocol error.
 * Bounded: gives up 3 s after the last datagram is sent.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';

const [socksArg = '', targetArg = '', countArg = '20', sizeArg = '500'] = process.argv.slice(2);
const [socksHost = '127.0.0.1', socksPort = '1080'] = socksArg.split(':');
const [targetIp = '', targetPort = '7'] = targetArg.split(':');
const count = Number(countArg);
const size = Number(sizeArg);
const WAIT_AFTER_MS = 3_000;
const PER_TICK = 5;
const TICK_MS = 20;

/** Reads exactly n bytes from the control connection (bounded by the socket's timeout). */
async function readExactly(socket: net.Socket, n: number): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  while (buf.length < n) {
    const chunk = socket.read() as Buffer | null;
    if (chunk) buf = Buffer.concat([buf, chunk]);
    else await once(socket, 'readable');
  }
  if (buf.length > n) socket.unshift(buf.subarray(n));
  return buf.subarray(0, n);
}

function header(ip: string, port: number): Buffer {
  const h = Buffer.alloc(10);
  h.writeUInt8(0x01, 3); // RSV RSV FRAG=0 ATYP=IPv4
  ip.split('.').forEach((part, i) => h.writeUInt8(Number(part), 4 + i));
  h.writeUInt16BE(port, 8);
  return h;
}

async function main(): Promise<void> {
  if (net.isIPv4(targetIp) === false || !(count > 0) || !(size > 0)) throw new Error('bad arguments');
  const control = net.connect({ host: socksHost, port: Number(socksPort) });
  control.setTimeout(10_000, () => control.destroy(new Error('SOCKS5 control connection timed out')));
  await once(control, 'connect');
  control.write(Buffer.from([0x05, 0x01, 0x00]));
  const method = await readExactly(control, 2);
  if (method[1] !== 0x00) throw new Error(`SOCKS5 method refused: ${method.toString('hex')}`);
  // UDP ASSOCIATE, DST 0.0.0.0:0: the relay learns our port from the first datagram.
  control.write(Buffer.from([0x05, 0x03, 0x00, 0x01, 0, 0, 0, 0, 0, 0]));
  const reply = await readExactly(control, 10);
  if (reply[1] !== 0x00 || reply[3] !== 0x01)
    throw new Error(`UDP ASSOCIATE refused: ${reply.toString('hex')}`);
  const relayHost = [...reply.subarray(4, 8)].join('.');
  const relayPort = reply.readUInt16BE(8);

  const udp = dgram.createSocket('udp4');
  const seen = new Set<number>();
  udp.on('message', (msg) => {
    // Header (10 bytes, from the target) then our payload: 4-byte sequence number and filler.
    if (msg.length !== 10 + size || msg.subarray(4, 8).join('.') !== targetIp) return;
    if (msg.readUInt16BE(8) !== Number(targetPort)) return;
    seen.add(msg.readUInt32BE(10));
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const head = header(targetIp, Number(targetPort));
  for (let sent = 0; sent < count;) {
    for (let i = 0; i < PER_TICK && sent < count; i++, sent++) {
      const payload = Buffer.alloc(size, 0x5a);
      payload.writeUInt32BE(sent, 0);
      udp.send(Buffer.concat([head, payload]), relayPort, relayHost);
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  const deadline = Date.now() + WAIT_AFTER_MS;
  while (seen.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(`${JSON.stringify({ sent: count, echoed: seen.size })}\n`);
  udp.close();
  control.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`socks5-udp-echo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
