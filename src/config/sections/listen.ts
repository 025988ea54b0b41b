/** `listen` and `auth`: where the daemon listens and the credentials its front ends ask for. */
import { z } from 'zod';
import { listenAddress } from '../fields.js';

/** RFC 1929 carries each of username and password in at most 255 bytes. */
const credential = z
  .string()
  .min(1)
  .refine((s) => Buffer.byteLength(s) <= 255, { message: 'must be at most 255 bytes (SOCKS5 limit)' });

export const listenSchema = z
  .strictObject({
    /** SOCKS5 front end, HOST:PORT; false or "" disables it. Default "127.0.0.1:1080". */
    socks: listenAddress(false).default('127.0.0.1:1080'),
    /** HTTP proxy front end, HOST:PORT; false or "" disables it. Default "127.0.0.1:8080". */
    http: listenAddress(false).default('127.0.0.1:8080'),
    /** Control API (status, metrics): HOST:PORT or a unix socket path; false disables it. Default "127.0.0.1:9190". */
    control: listenAddress(true).default('127.0.0.1:9190'),
    /** Allow listening beyond loopback without auth (front ends) or at all (control). Default false. */
    allowOpen: z.boolean().default(false),
  })
  .prefault({});

export const authSchema = z.strictObject({
  /** Required by both front ends when auth is set: SOCKS5 username/password (RFC 1929), HTTP Proxy-Authorization. */
  username: credential,
  /** Never printed: `linkmux config show` and the logs show "***". */
  password: credential,
});
