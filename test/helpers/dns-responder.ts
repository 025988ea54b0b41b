/**
 * A programmable DNS server on loopback for resolver tests: UDP on 127.0.0.1
 * (ephemeral port) and TCP on the same port number, answering per name as
 * told, and counting what it was asked.
 *
 *   resolver ─► link socket ─► 127.0.0.1:port/udp ─► behaviour(name)
 *                         └──► 127.0.0.1:port/tcp (after a TC reply)
 *
 * A name without a behaviour gets `fallback` (NXDOMAIN unless set).
 */
import dgram from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import packet from 'dns-packet';

export interface Behaviour {
  /** A records; absent → NODATA for A (unless `rcode` says otherwise). */
  a?: string[];
  /** AAAA records; absent → NODATA for AAAA. */
  aaaa?: string[];
  /** TTL of the records (default 60 s). */
  ttl?: number;
  /** CNAME to put before the records (its TTL is `ttl` too). */
  cname?: string;
  /** NXDOMAIN with an SOA whose TTL and minimum give `negativeTtl`; SERVFAIL; or never answer. */
  rcode?: 'NXDOMAIN' | 'SERVFAIL' | 'silent';
  /** RFC 2308 TTL of NXDOMAIN / NODATA (the SOA's; default 60). */
  negativeTtl?: number;
  /** UDP gets an empty reply with the TC bit; TCP gets the full answer. */
  truncate?: boolean;
  /** Before the real reply: one with a wrong id, or the right reply from another port; both say 6.6.6.6. */
  spoofFirst?: 'wrong-id' | 'wrong-port';
  /** The reply waits for this promise (a query held in flight). */
  hold?: Promise<void>;
}

export interface Asked {
  name: string;
  type: string;
  transport: 'udp' | 'tcp';
}

export const SPOOFED = '6.6.6.6';

export class DnsResponder extends EventEmitter {
  readonly port: number;
  readonly asked: Asked[] = [];
  /** What names without a behaviour get. */
  fallback: Behaviour = { rcode: 'NXDOMAIN' };
  private readonly zone = new Map<string, Behaviour>();
  private readonly connections = new Set<net.Socket>();

  private constructor(
    private readonly udp: dgram.Socket,
    private readonly tcp: net.Server,
    private readonly spoofer: dgram.Socket,
  ) {
    super();
    this.port = udp.address().port;
    udp.on('message', (msg, rinfo) => void this.onUdp(msg, rinfo));
    tcp.on('connection', (socket) => this.onTcp(socket));
  }

  /** UDP and TCP on one ephemeral port number of 127.0.0.1 (a few tries if TCP's is taken). */
  static async start(): Promise<DnsResponder> {
    const spoofer = dgram.createSocket('udp4');
    spoofer.bind(0, '127.0.0.1');
    await once(spoofer, 'listening');
    for (let attempt = 0; attempt < 10; attempt++) {
      const udp = dgram.createSocket('udp4');
      udp.bind(0, '127.0.0.1');
      await once(udp, 'listening');
      const tcp = net.createServer();
      try {
        tcp.listen(udp.address().port, '127.0.0.1');
        await once(tcp, 'listening');
        return new DnsResponder(udp, tcp, spoofer);
      } catch {
        udp.close();
        tcp.close();
      }
    }
    spoofer.close();
    throw new Error('no port number free for both UDP and TCP on 127.0.0.1 after 10 tries');
  }

  /** How `name` is answered (case-insensitive, no trailing dot). */
  set(name: string, behaviour: Behaviour): this {
    this.zone.set(key(name), behaviour);
    return this;
  }

  /** Queries seen for `name` (any type and transport, or those given). */
  count(name: string, filter: Partial<Omit<Asked, 'name'>> = {}): number {
    return this.asked.filter(
      (q) =>
        key(q.name) === key(name) &&
        (filter.type === undefined || q.type === filter.type) &&
        (filter.transport === undefined || q.transport === filter.transport),
    ).length;
  }

  /** Resolves once `n` queries in all have been seen (bounded by `ms`). */
  async waitForQueries(n: number, ms = 5_000): Promise<void> {
    if (this.asked.length >= n) return;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      while (this.asked.length < n) await once(this, 'query', { signal: ac.signal });
    } catch {
      throw new Error(`the DNS responder saw ${this.asked.length} queries, not ${n}, within ${ms} ms`);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([
      new Promise<void>((r) => this.udp.close(() => r())),
      new Promise<void>((r) => this.spoofer.close(() => r())),
      new Promise<void>((r) => {
        this.tcp.close(() => r());
        for (const c of this.connections) c.destroy();
      }),
    ]);
  }

  private behaviourOf(name: string): Behaviour {
    return this.zone.get(key(name)) ?? this.fallback;
  }

  private async onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const query = decodeQuery(msg);
    if (!query) return;
    const { name, type } = query.questions![0]!;
    this.asked.push({ name, type, transport: 'udp' });
    this.emit('query');
    const b = this.behaviourOf(name);
    if (b.rcode === 'silent') return;
    if (b.hold) await b.hold;
    const send = (buf: Buffer, from = this.udp) => from.send(buf, rinfo.port, rinfo.address);
    if (b.spoofFirst === 'wrong-id') {
      send(build(query, { a: [SPOOFED], aaaa: ['2001:db8::666'] }, (query.id! + 1) & 0xffff));
    } else if (b.spoofFirst === 'wrong-port') {
      send(build(query, { a: [SPOOFED], aaaa: ['2001:db8::666'] }), this.spoofer);
    }
    send(b.truncate ? build(query, {}, query.id, packet.TRUNCATED_RESPONSE) : build(query, b));
  }

  private onTcp(socket: net.Socket): void {
    this.connections.add(socket);
    socket.on('close', () => this.connections.delete(socket));
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const query = decodeQuery(msg);
        if (!query) return void socket.destroy();
        const { name, type } = query.questions![0]!;
        this.asked.push({ name, type, transport: 'tcp' });
        this.emit('query');
        const b = this.behaviourOf(name);
        if (b.rcode === 'silent') continue;
        const body = build(query, { ...b, truncate: false });
        const len = Buffer.alloc(2);
        len.writeUInt16BE(body.length);
        socket.write(Buffer.concat([len, body]));
      }
    });
  }
}

function key(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function decodeQuery(msg: Buffer): packet.DecodedPacket | undefined {
  try {
    const q = packet.decode(msg);
    return q.type === 'query' && q.questions?.length === 1 ? q : undefined;
  } catch {
    return undefined;
  }
}

const RCODE = { NXDOMAIN: 3, SERVFAIL: 2 } as const;

/** The reply to `query` under `b`; the question is echoed as asked (case kept). */
function build(query: packet.DecodedPacket, b: Behaviour, id = query.id, extraFlags = 0): Buffer {
  const q = query.questions![0]!;
  const ttl = b.ttl ?? 60;
  const negative = b.negativeTtl ?? 60;
  const soa: packet.Answer = {
    type: 'SOA',
    name: 'test',
    // RFC 2308: min(SOA TTL, minimum) — make the minimum the binding one.
    ttl: negative + 100,
    data: {
      mname: 'ns.test',
      rname: 'hostmaster.test',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: negative,
    },
  };
  const rcode = b.rcode === 'NXDOMAIN' || b.rcode === 'SERVFAIL' ? RCODE[b.rcode] : 0;
  const answers: packet.Answer[] = [];
  let owner = q.name;
  if (b.cname && rcode === 0 && extraFlags === 0) {
    answers.push({ type: 'CNAME', name: owner, ttl, data: b.cname });
    owner = b.cname;
  }
  const records = q.type === 'A' ? b.a : q.type === 'AAAA' ? b.aaaa : undefined;
  if (rcode === 0 && extraFlags === 0) {
    for (const data of records ?? []) answers.push({ type: q.type as 'A', name: owner, ttl, data });
  }
  const negativeReply = rcode === RCODE.NXDOMAIN || (rcode === 0 && extraFlags === 0 && !records?.length);
  return packet.encode({
    type: 'response',
    id: id ?? 0,
    flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | rcode | extraFlags,
    questions: [q],
    answers,
    authorities: negativeReply ? [soa] : [],
  });
}
