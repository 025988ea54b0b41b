/**
 * One DNS query forced out of one device (SO_BINDTODEVICE, the product's own
 * bind-device module), for the netns tier: shows the testbed's DNS answers
 * through that uplink, whatever the default route is.
 *
 *   node dist/test/helpers/dns-via-device-main.js DEVICE SERVER NAME [A|AAAA]
 *
 * Prints the answer's addresses (one per line), exit 0; exit 2 on NXDOMAIN or no
 * address; exit 1 when nothing came back within 2 s.
 */
import os from 'node:os';
import packet from 'dns-packet';
import { createBoundUdpSocket } from '../../src/net/bind-device.js';

const [device, server, name, type = 'A'] = process.argv.slice(2);
if (!device || !server || !name || (type !== 'A' && type !== 'AAAA')) {
  process.stderr.write('usage: dns-via-device-main DEVICE SERVER NAME [A|AAAA]\n');
  process.exit(64);
}
const own = os.networkInterfaces()[device]?.find((a) => a.family === 'IPv4');
if (!own) {
  process.stderr.write(`${device} has no IPv4 address\n`);
  process.exit(1);
}
const socket = await createBoundUdpSocket(device, own.address);
const id = Math.floor(Math.random() * 65536);
const timer = setTimeout(() => {
  process.stderr.write(`no answer from ${server} through ${device} within 2 s\n`);
  process.exit(1);
}, 2_000);
socket.on('message', (msg) => {
  const r = packet.decode(msg);
  if (r.id !== id) return;
  clearTimeout(timer);
  const addrs = (r.answers ?? []).flatMap((a) => (a.type === type ? [String(a.data)] : []));
  process.stdout.write(addrs.map((a) => `${a}\n`).join(''));
  process.exit(addrs.length > 0 ? 0 : 2);
});
socket.send(
  packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ type, name }] }),
  53,
  server,
);
