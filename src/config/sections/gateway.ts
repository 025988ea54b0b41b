/** `gateway`: the whole LAN over every WAN of this Linux router. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { cidrMatch, duration, portMatch } from '../fields.js';

const ipAddress = z
  .string()
  .trim()
  .refine((v) => isIP(v) !== 0, { message: 'expected an IP address, e.g. 192.168.1.1' });

export const gatewayUplinkSchema = z.strictObject({
  /** The WAN interface, e.g. "eth1" or "wwan0". */
  interface: z.string().trim().min(1).max(15),
  /** Its next hop; default: the gateway of the interface's default route. */
  gateway: ipAddress.optional(),
  /** Fixed relative weight (> 0); default: follow the capacity measured on the interface. */
  weight: z.number().positive().max(1_000_000).optional(),
  /** Id shown in status; default: the interface name. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,32}$/, 'use 1-32 letters, digits, ".", "_" or "-"')
    .optional(),
});

export const gatewayRuleSchema = z
  .strictObject({
    /** Every field given must hold; at least one is needed. */
    match: z.strictObject({
      /** LAN source network: "sticky per source", e.g. 192.168.1.50/32. */
      source: cidrMatch.optional(),
      /** Destination network. */
      destination: cidrMatch.optional(),
      /** Destination port or range "8000-8999" (TCP and UDP). */
      port: portMatch.optional(),
    }),
    /** bypass (the main routing table decides) or uplink:<name>. */
    action: z.string().regex(/^(bypass|uplink:[A-Za-z0-9._-]{1,32})$/, 'expected bypass or uplink:<name>'),
  })
  .superRefine((rule, ctx) => {
    const m = rule.match;
    if (m.source === undefined && m.destination === undefined && m.port === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['match'],
        message: 'give at least one of source, destination, port',
      });
    }
  });

export const gatewaySchema = z
  .strictObject({
    /** LAN interfaces whose new connections are spread over the uplinks. Default []. */
    lan: z.array(z.string().trim().min(1).max(15)).default([]),
    /** The WAN uplinks. Default [] (`linkmux gateway` needs at least one). */
    uplinks: z.array(gatewayUplinkSchema).default([]),
    /** Exceptions, first match wins: pin a source or destination to an uplink, or bypass. Default []. */
    rules: z.array(gatewayRuleSchema).default([]),
    /** Seconds between weight updates from the measured capacity. Default 5. */
    weightInterval: duration(1, 3600).default(5),
    /** Base of the packet/conntrack marks (low 8 bits zero). Default 0x4c00 (19456). */
    markBase: z.number().int().min(0x100).max(0x7fffff00).default(0x4c00),
    /** Mark bits owned by linkmux. Default 0xff00 (65280). */
    markMask: z.number().int().min(0x100).max(0x7fffffff).default(0xff00),
    /** Routing tables tableBase+1 … (one per uplink). Default 4200. */
    tableBase: z.number().int().min(1).max(2_000_000_000).default(4200),
    /** First ip rule priority; linkmux uses priority … priority + 2 × uplinks. Default 4200. */
    priority: z.number().int().min(1).max(32000).default(4200),
  })
  .superRefine((g, ctx) => {
    const names = new Set<string>();
    g.uplinks.forEach((u, i) => {
      const name = u.name ?? u.interface;
      if (names.has(name))
        ctx.addIssue({ code: 'custom', path: ['uplinks', i], message: `"${name}" is listed twice` });
      names.add(name);
      if (g.lan.includes(u.interface)) {
        ctx.addIssue({
          code: 'custom',
          path: ['uplinks', i, 'interface'],
          message: `${u.interface} is also in lan`,
        });
      }
    });
    g.rules.forEach((r, i) => {
      const target = r.action.startsWith('uplink:') ? r.action.slice('uplink:'.length) : undefined;
      if (target !== undefined && !names.has(target)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'action'],
          message: `no uplink is named ${target} (uplinks: ${[...names].join(', ') || 'none'})`,
        });
      }
    });
    if ((g.markBase & ~g.markMask) !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['markBase'],
        message: 'markBase must have no bit outside markMask',
      });
    }
  })
  .prefault({});
