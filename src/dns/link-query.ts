/**
 * One DNS exchange with one nameserver, carried by one link: a UDP query from a
 * socket the link opened (so it leaves by that link like any connection), and
 * the same query over TCP through `link.connect` when the answer is truncated.
 *
 *   resolver ─► queryThroughLink(link, server, question) ─► link.openUdp ─► server:53
 *                                                     └─ TC bit ─► link.connect ─► server:53/tcp
 *
 * Guarantees: only a datagram from the server's address and port that decodes
 * as the answer to this query (id and question) settles the exchange; strays
 * are ignored. The signal ends the exchange at once with LINKMUX_ERR_ABORTED
 * and every socket it opened is closed, whatever the outcome. Never waits on
 * its own: the caller's signal is the deadline.
 */
import { randomInt } from 'node:crypto';
import { formatHostPort, ipFamily } from '../net/address.js';
import type { Socket } from 'node:net';
import type { Socket as UdpSocket } from 'node:dgram';
import type { Destination, ConnectOptions } from '../links/link.js';
import { LinkmuxError, describe } from '../util/errors.js';
import { encodeQuery, encodeTcpQuery, interpret, type Interpretation, type Question } from './message.js';

/** What carries a query: a Link, or the plain sockets used for loopback nameservers. */
export interface Carrier {
  readonly id: string;
  openUdp(family: 4 | 6): Promise<UdpSocket>;
  connect(dst: Destination, opts?: ConnectOptions): Promise<Socket>;
}

export interface Nameserver {
  address: string;
  port: number;
}

/** Largest DNS message over TCP (the length prefix is 16 bits). */
const MAX_TCP_MESSAGE = 65_535;

export type Settled = Exclude<Interpretation, { kind: 'invalid' } | { kind: 'truncated' }>;

export async function queryThroughLink(
  carrier: Carrier,
  server: Nameserver,
  q: Question,
  signal: AbortSignal,
): Promise<Settled> {
  const id = randomInt(0, 65_536);
  const first = await udpExchange(carrier, server, q, id, signal);
  if (first.kind !== 'truncated') return first;
  return tcpExchange(carrier, server, q, randomInt(0, 65_536), signal);
}

function aborted(carrier: Carrier, server: Nameserver): LinkmuxError {
  return new LinkmuxError(
    'LINKMUX_ERR_ABORTED',
    `DNS query to ${show(server)} through ${carrier.id} was cut short`,
  );
}

async function udpExchange(
  carrier: Carrier,
  server: Nameserver,
  q: Question,
  id: number,
  signal: AbortSignal,
): Promise<Settled | { kind: 'truncated' }> {
  if (signal.aborted) throw aborted(carrier, server);
  const family = ipFamily(server.address) === 6 ? 6 : 4;
  const socket = await carrier.openUdp(family);
  try {
    return await new Promise<Settled | { kind: 'truncated' }>((resolve, reject) => {
      const onAbort = () => reject(aborted(carrier, server));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const done = () => signal.removeEventListener('abort', onAbort);
      socket.on('message', (msg, rinfo) => {
        if (rinfo.address !== server.address || rinfo.port !== server.port) return;
        const meaning = interpret(msg, id, q);
        if (meaning.kind === 'invalid') return;
        done();
        resolve(meaning);
      });
      socket.on('error', (err) => {
        done();
        reject(
          new LinkmuxError(
            'LINKMUX_ERR_DNS',
            `DNS query to ${show(server)} through ${carrier.id}: ${describe(err)}`,
            {
              cause: err,
            },
          ),
        );
      });
      socket.send(encodeQuery(id, q), server.port, server.address, (err) => {
        if (!err) return;
        done();
        reject(
          new LinkmuxError(
            'LINKMUX_ERR_DNS',
            `cannot send a DNS query to ${show(server)} through ${carrier.id}: ${describe(err)}`,
            {
              cause: err,
            },
          ),
        );
      });
    });
  } finally {
    // The link may have closed it already (destroyAll when the job ends): a second close throws.
    try {
      socket.close();
    } catch {
      /* already closed */
    }
  }
}

async function tcpExchange(
  carrier: Carrier,
  server: Nameserver,
  q: Question,
  id: number,
  signal: AbortSignal,
): Promise<Settled> {
  const socket = await carrier.connect({ host: server.address, port: server.port }, { signal });
  try {
    return await new Promise<Settled>((resolve, reject) => {
      const onAbort = () => reject(aborted(carrier, server));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const fail = (why: string, cause?: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(
          new LinkmuxError(
            'LINKMUX_ERR_DNS',
            `DNS over TCP to ${show(server)} through ${carrier.id}: ${why}`,
            {
              cause,
            },
          ),
        );
      };
      let buf = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        if (buf.length > MAX_TCP_MESSAGE + 2) return fail('the reply is longer than a DNS message can be');
        if (buf.length < 2) return;
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) return;
        const meaning = interpret(buf.subarray(2, 2 + len), id, q);
        if (meaning.kind === 'invalid') return fail(`the reply is not the answer (${meaning.why})`);
        if (meaning.kind === 'truncated') return fail('the reply is truncated even over TCP');
        signal.removeEventListener('abort', onAbort);
        resolve(meaning);
      });
      socket.on('error', (err) => fail(describe(err), err));
      socket.on('end', () => fail('the server closed the connection before answering'));
      socket.write(encodeTcpQuery(id, q));
    });
  } finally {
    socket.destroy();
  }
}

function show(server: Nameserver): string {
  return formatHostPort({ host: server.address, port: server.port });
}
