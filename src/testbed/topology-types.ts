/** The testbed plan's shape: what topology.ts computes and the command builders read. */

export interface UplinkPlan {
  index: number;
  /** Device in its machine's ns: up0, up1, … (unique across machines). */
  dev: string;
  /** Which machine owns it: 0 = the client, k ≥ 1 = node k. */
  machine: number;
  /** The namespace of that machine, where `dev` lives. */
  hostNs: string;
  /** The machine's address on dev. */
  address: string;
  /** The ISP's address on the client side, the default route's gateway. */
  gateway: string;
  ispNs: string;
  rateMbit: number;
  /** Route metric of this uplink's default route: 100, 101, … in order within its machine. */
  metric: number;
  /** The ISP's address on the server-side bridge. */
  ispServerAddress: string;
}

/** A machine on the LAN with uplinks of its own: the client (index 0) or a node. */
export interface MachinePlan {
  index: number;
  ns: string;
  /** Address on its lan0; '' when the testbed has no LAN. */
  lanAddress: string;
  /** Indexes of the uplinks it owns, ascending. */
  uplinks: number[];
}

/** A LAN-only host: no uplink, default route via the client's LAN address. */
export interface LanHostPlan {
  index: number;
  ns: string;
  lanAddress: string;
}

export interface LanPlan {
  /** The namespace holding the bridge (the switch, not a machine). */
  ns: string;
  bridge: string;
  subnet: string;
  /** The client's LAN address: LAN hosts' default gateway. */
  gateway: string;
}

export interface TopologyPlan {
  prefix: string;
  clientNs: string;
  serverNs: string;
  serverAddress: string;
  uplinks: UplinkPlan[];
  /** Index 0 is the client; always present, also without a LAN. */
  machines: MachinePlan[];
  lanHosts: LanHostPlan[];
  /** Present when there is more than one machine or any LAN host. */
  lan?: LanPlan;
  /** Present (true) when default routes live in per-uplink policy tables (policy-tables.ts). */
  policyTables?: true;
  /** Present with the `farServer` option: a second host on the server bridge (the `linkmux server` machine). */
  farServer?: FarServerPlan;
}

/**
 * A host beside the web server on the ISPs' side of the world: reached from the
 * client through the ISPs like the web server, and reaching the web server over
 * the bridge (unshaped). `linkmux server` runs here, so the web host is another
 * machine (a server refuses to relay to its own addresses).
 */
export interface FarServerPlan {
  ns: string;
  /** 198.19.0.20 on its eth0. */
  address: string;
  dev: string;
  /** Its port on the server namespace's bridge. */
  bridgePort: string;
}

export interface TopologyOptions {
  /** Namespace name prefix, e.g. "lmx-1234-ab12-". */
  prefix: string;
  /** Number of uplinks, 1–9. Default 3. */
  links?: number;
  /** Shaped rate per uplink in Mbit/s, one number for all or one per link. Default 8. */
  rateMbit?: number | number[];
  /**
   * Owner of each uplink, one entry per link: 0 = the client ns, k ≥ 1 = node machine
   * k ("<prefix>n<k>"). Nodes are numbered 1, 2, … without gaps. Default: all 0.
   */
  machines?: number[];
  /** LAN-only hosts "<prefix>h1", …, 0–9. Default 0. */
  lanHosts?: number;
  /**
   * No main-table default routes: each uplink's default route in its own table,
   * selected by `ip rule from <its address>`. Not with LAN hosts (their forwarded
   * traffic would match no rule). Default false.
   */
  policyTables?: boolean;
  /** Add the far-server host "<prefix>f" at 198.19.0.20 on the server bridge (FarServerPlan). Default false. */
  farServer?: boolean;
}

export interface RouteState {
  /** One multipath default route instead of one route per uplink. */
  ecmp: boolean;
  /** Uplinks whose client device is administratively down (the kernel dropped their routes). */
  down: ReadonlySet<number>;
}
