/** `rpc`: aria2's JSON-RPC on `linkmux up`. */
import { z } from 'zod';
import { isLoopbackHost, parseHostPort } from '../../net/address.js';
import { count, listenAddress } from '../fields.js';

export const rpcSchema = z
  .strictObject({
    /** Serve the aria2 JSON-RPC (`up --rpc` sets it). Default false. */
    enabled: z.boolean().default(false),
    /** Its own listener, HOST:PORT (aria2's 6800), or false: only /jsonrpc on the control address. Default "127.0.0.1:6800". */
    listen: listenAddress(false).default('127.0.0.1:6800'),
    /** Clients send "token:SECRET" first, as to aria2 --rpc-secret. Required beyond loopback, and for other origins (CORS). Never printed. */
    secret: z.string().min(1).max(1024).optional(),
    /** Default download directory. Default: ~/Downloads. */
    dir: z.string().trim().min(1).optional(),
    /** Downloads running at once; the rest wait in the queue. Default 5. */
    maxConcurrentDownloads: count(1, 100).default(5),
    /** Connections per link of a download unless the client sends split / max-connection-per-server. Default 1. */
    connectionsPerLink: count(1, 16).default(1),
    /** Finished results kept in the list (aria2's max-download-result). Default 1000. */
    maxResults: count(0, 100_000).default(1000),
    /** Where the download list (rpc-session.json) lives. Default: /var/lib/linkmux as root, else ~/.local/state/linkmux. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .superRefine((rpc, ctx) => {
    if (rpc.listen === false || rpc.secret !== undefined) return;
    const hp = parseHostPort(rpc.listen);
    if (hp && !isLoopbackHost(hp.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message:
          `${rpc.listen} is reachable from other machines and no rpc.secret is set, so anyone could make ` +
          'this machine download files: set rpc.secret, or listen on 127.0.0.1',
      });
    }
  })
  .prefault({});
