/** `node`: lending this machine's uplinks to the LAN. */
import { z } from 'zod';
import { cidrMatch, nodeListen, nodeName } from '../fields.js';

export const nodeSchema = z
  .strictObject({
    /** Lend this machine's uplinks to other linkmux machines; `linkmux node` and `up --node` set it. Default false. */
    enabled: z.boolean().default(false),
    /** "lan:PORT" (every private address of this machine), HOST:PORT or a port. Default "lan:7300". */
    listen: nodeListen.default('lan:7300'),
    /** The host (or HOST:PORT) written into join tokens; default: the first address listened on. */
    advertise: z.string().trim().min(1).optional(),
    /** The node's name in tokens; clients name its links after it. Default: this machine's host name. */
    name: nodeName.optional(),
    /** Private, loopback or link-local destinations the node may relay to anyway (CIDRs). Default []. */
    allow: z.array(cidrMatch).default([]),
    /** Certificate, key and secret live here. Default: /var/lib/linkmux as root, else ~/.local/state/linkmux. */
    stateDir: z.string().trim().min(1).optional(),
  })
  .prefault({});
