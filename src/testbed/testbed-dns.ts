/**
 * The testbed's names: the default zone, and the DNS server process in the server
 * namespace whose query log the tests read.
 *
 * With the `dns` option the testbed runs dns-server-main.js on 198.19.0.10:53 (UDP
 * and TCP) and gives its machines and LAN hosts a resolv.conf naming it
 * (netns-etc.ts). The server namespace is reachable through every ISP, so the
 * server answers through every uplink; each query's source address is the
 * server-side address of the ISP it came through (198.19.0.<i+1> for uplink i), which
 * is how a test tells which uplink carried a lookup.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitListening } from './child-processes.js';
import type { DnsQueryRecord, DnsZone } from './dns-server.js';

/** A name with an A record: the server address. */
export const FILES_NAME = 'files.test';
/** A name with only an AAAA record (2001:db8::10): unreachable over IPv4-only links. */
export const V6_ONLY_NAME = 'v6only.test';
export const V6_ONLY_ADDRESS = '2001:db8::10';
export const DNS_PORT = 53;

export function defaultZone(serverAddress: string): DnsZone {
  return {
    names: { [FILES_NAME]: { a: [serverAddress] }, [V6_ONLY_NAME]: { aaaa: [V6_ONLY_ADDRESS] } },
    ttl: 1,
    negativeTtl: 5,
  };
}

/** Keeps the last queries only, so a long benchmark cannot grow it without bound. */
const MAX_RECORDS = 100_000;

export class DnsServerProcess {
  private records: DnsQueryRecord[] = [];

  /** Starts the server through `spawn` (the testbed's, so destroy() kills it) and waits until it listens. */
  async start(
    spawn: (cmd: string, args: string[]) => ChildProcess,
    zone: DnsZone,
    timeoutMs: number,
  ): Promise<void> {
    const main = fileURLToPath(new URL('./dns-server-main.js', import.meta.url));
    const child = spawn(process.execPath, [
      main,
      '--host',
      '0.0.0.0',
      '--port',
      String(DNS_PORT),
      '--zone',
      JSON.stringify(zone),
    ]);
    let partial = '';
    child.stdout?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('query ')) continue;
        this.records.push(JSON.parse(line.slice('query '.length)) as DnsQueryRecord);
        if (this.records.length > MAX_RECORDS) this.records.splice(0, this.records.length - MAX_RECORDS);
      }
    });
    await waitListening(child, 'DNS server', timeoutMs);
  }

  queries(): DnsQueryRecord[] {
    return [...this.records];
  }

  reset(): void {
    this.records = [];
  }
}
