/** What linkmux knows about one network interface of this machine. */
export interface InterfaceAddress {
  address: string;
  family: 4 | 6;
  prefixLength: number;
}

export interface NetInterface {
  name: string;
  up: boolean;
  loopback: boolean;
  addresses: InterfaceAddress[];
  /** Gateway of this interface's default route, when there is one. */
  gateway?: string;
  /** Metric of that default route (lower wins in the main table). */
  metric?: number;
  /**
   * Set when that default route is not in the main table but in policy table
   * `table`, which the rule `from <from>` selects for the interface's address.
   */
  policyRoute?: { table: number; from: string };
}

/** One default route of a routing table, as `ip -j route show default` lists it. */
export interface DefaultRoute {
  dev: string;
  family: 4 | 6;
  gateway?: string;
  /** `ip` omits a metric of 0. */
  metric: number;
}
