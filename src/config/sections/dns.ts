/** `dns`: name lookups sent through the links. */
import { z } from 'zod';
import { duration, nameserver } from '../fields.js';

export const dnsSchema = z
  .strictObject({
    /**
     * Nameservers asked first, each query sent out of a healthy link: "1.1.1.1",
     * "9.9.9.9:53", "[2606:4700::1111]:53". Default [] (the system's only).
     */
    servers: z.array(nameserver).default([]),
    /** Also ask the system's nameservers (/etc/resolv.conf; systemd-resolved's upstreams). Default true. */
    system: z.boolean().default(true),
    /** Seconds before the next attempt (another link or server) joins a query. Default 1. */
    tryTimeout: duration(0.05, 30).default(1),
    /** Seconds a lookup may take in all, never more than connectTimeout. Default 5. */
    timeout: duration(0.1, 60).default(5),
  })
  .prefault({});
