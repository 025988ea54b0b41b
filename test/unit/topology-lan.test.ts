// The testbed topology with LAN machines and LAN hosts (nodes, gateway), compared with expected text.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatCommands,
  gatewayMasqueradeCommands,
  planTopology,
  routeCommands,
  setupCommands,
} from '../../src/testbed/topology.js';
import { hostPlan, lanPlan, plan } from '../helpers/topology-plans.js';
import { blackholeCommands, linkStateCommands } from '../../src/testbed/faults.js';

// Three machines on one LAN, each with its own uplink: lanPlan.
const EXPECTED_LAN_SETUP = `ip netns add t-c
ip netns add t-n1
ip netns add t-n2
ip netns add t-l
ip netns add t-s
ip netns add t-i0
ip netns add t-i1
ip netns add t-i2
ip -n t-c link set lo up
ip netns exec t-c sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-c sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-n1 link set lo up
ip netns exec t-n1 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-n1 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-n2 link set lo up
ip netns exec t-n2 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-n2 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-l link set lo up
ip netns exec t-l sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-l sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-s link set lo up
ip netns exec t-s sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-s sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i0 link set lo up
ip netns exec t-i0 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i1 link set lo up
ip netns exec t-i1 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i1 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i2 link set lo up
ip netns exec t-i2 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i2 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.ip_forward=1
ip netns exec t-i1 sysctl -qw net.ipv4.ip_forward=1
ip netns exec t-i2 sysctl -qw net.ipv4.ip_forward=1
ip -n t-s link add br0 type bridge
ip -n t-s addr add 198.19.0.10/24 dev br0
ip -n t-s link set br0 up
ip -n t-c link add up0 type veth peer name cl netns t-i0
ip -n t-i0 link add sv type veth peer name isp0 netns t-s
ip -n t-s link set isp0 master br0
ip -n t-s link set isp0 up
ip -n t-c addr add 198.18.1.2/24 dev up0
ip -n t-c link set up0 up
ip -n t-i0 addr add 198.18.1.1/24 dev cl
ip -n t-i0 link set cl up
ip -n t-i0 addr add 198.19.0.1/24 dev sv
ip -n t-i0 link set sv up
tc -n t-c qdisc replace dev up0 root tbf rate 8mbit burst 15000 latency 50ms
tc -n t-i0 qdisc replace dev cl root tbf rate 8mbit burst 15000 latency 50ms
ip netns exec t-i0 nft -f - <<'EOF'
table ip linkmux_isp {
  chain isp_outside {
    type filter hook prerouting priority raw; policy accept;
    ip daddr != 198.18.0.0/15 counter drop
  }
  chain isp_forward {
    type filter hook forward priority filter; policy accept;
    iifname "cl" ip saddr != 198.18.1.0/24 counter drop
  }
  chain isp_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "sv" masquerade
  }
}
EOF
ip -n t-n1 link add up1 type veth peer name cl netns t-i1
ip -n t-i1 link add sv type veth peer name isp1 netns t-s
ip -n t-s link set isp1 master br0
ip -n t-s link set isp1 up
ip -n t-n1 addr add 198.18.2.2/24 dev up1
ip -n t-n1 link set up1 up
ip -n t-i1 addr add 198.18.2.1/24 dev cl
ip -n t-i1 link set cl up
ip -n t-i1 addr add 198.19.0.2/24 dev sv
ip -n t-i1 link set sv up
tc -n t-n1 qdisc replace dev up1 root tbf rate 8mbit burst 15000 latency 50ms
tc -n t-i1 qdisc replace dev cl root tbf rate 8mbit burst 15000 latency 50ms
ip netns exec t-i1 nft -f - <<'EOF'
table ip linkmux_isp {
  chain isp_outside {
    type filter hook prerouting priority raw; policy accept;
    ip daddr != 198.18.0.0/15 counter drop
  }
  chain isp_forward {
    type filter hook forward priority filter; policy accept;
    iifname "cl" ip saddr != 198.18.2.0/24 counter drop
  }
  chain isp_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "sv" masquerade
  }
}
EOF
ip -n t-n2 link add up2 type veth peer name cl netns t-i2
ip -n t-i2 link add sv type veth peer name isp2 netns t-s
ip -n t-s link set isp2 master br0
ip -n t-s link set isp2 up
ip -n t-n2 addr add 198.18.3.2/24 dev up2
ip -n t-n2 link set up2 up
ip -n t-i2 addr add 198.18.3.1/24 dev cl
ip -n t-i2 link set cl up
ip -n t-i2 addr add 198.19.0.3/24 dev sv
ip -n t-i2 link set sv up
tc -n t-n2 qdisc replace dev up2 root tbf rate 8mbit burst 15000 latency 50ms
tc -n t-i2 qdisc replace dev cl root tbf rate 8mbit burst 15000 latency 50ms
ip netns exec t-i2 nft -f - <<'EOF'
table ip linkmux_isp {
  chain isp_outside {
    type filter hook prerouting priority raw; policy accept;
    ip daddr != 198.18.0.0/15 counter drop
  }
  chain isp_forward {
    type filter hook forward priority filter; policy accept;
    iifname "cl" ip saddr != 198.18.3.0/24 counter drop
  }
  chain isp_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "sv" masquerade
  }
}
EOF
ip -n t-l link add lan type bridge
ip -n t-l link set lan up
ip -n t-c link add lan0 type veth peer name c netns t-l
ip -n t-l link set c master lan
ip -n t-l link set c up
ip -n t-c addr add 198.18.100.1/24 dev lan0
ip -n t-c link set lan0 up
ip -n t-n1 link add lan0 type veth peer name n1 netns t-l
ip -n t-l link set n1 master lan
ip -n t-l link set n1 up
ip -n t-n1 addr add 198.18.100.2/24 dev lan0
ip -n t-n1 link set lan0 up
ip -n t-n2 link add lan0 type veth peer name n2 netns t-l
ip -n t-l link set n2 master lan
ip -n t-l link set n2 up
ip -n t-n2 addr add 198.18.100.3/24 dev lan0
ip -n t-n2 link set lan0 up
ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100
ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=0
ip -n t-n1 route replace default via 198.18.2.1 dev up1 metric 100
ip netns exec t-n1 sysctl -qw net.ipv4.fib_multipath_hash_policy=0
ip -n t-n2 route replace default via 198.18.3.1 dev up2 metric 100
ip netns exec t-n2 sysctl -qw net.ipv4.fib_multipath_hash_policy=0`;

// One uplink and one LAN-only host routed through the client: hostPlan.
const EXPECTED_HOST_SETUP = `ip netns add t-c
ip netns add t-h1
ip netns add t-l
ip netns add t-s
ip netns add t-i0
ip -n t-c link set lo up
ip netns exec t-c sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-c sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-h1 link set lo up
ip netns exec t-h1 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-h1 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-l link set lo up
ip netns exec t-l sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-l sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-s link set lo up
ip netns exec t-s sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-s sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i0 link set lo up
ip netns exec t-i0 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.ip_forward=1
ip netns exec t-c sysctl -qw net.ipv4.ip_forward=1
ip -n t-s link add br0 type bridge
ip -n t-s addr add 198.19.0.10/24 dev br0
ip -n t-s link set br0 up
ip -n t-c link add up0 type veth peer name cl netns t-i0
ip -n t-i0 link add sv type veth peer name isp0 netns t-s
ip -n t-s link set isp0 master br0
ip -n t-s link set isp0 up
ip -n t-c addr add 198.18.1.2/24 dev up0
ip -n t-c link set up0 up
ip -n t-i0 addr add 198.18.1.1/24 dev cl
ip -n t-i0 link set cl up
ip -n t-i0 addr add 198.19.0.1/24 dev sv
ip -n t-i0 link set sv up
tc -n t-c qdisc replace dev up0 root tbf rate 8mbit burst 15000 latency 50ms
tc -n t-i0 qdisc replace dev cl root tbf rate 8mbit burst 15000 latency 50ms
ip netns exec t-i0 nft -f - <<'EOF'
table ip linkmux_isp {
  chain isp_outside {
    type filter hook prerouting priority raw; policy accept;
    ip daddr != 198.18.0.0/15 counter drop
  }
  chain isp_forward {
    type filter hook forward priority filter; policy accept;
    iifname "cl" ip saddr != 198.18.1.0/24 counter drop
  }
  chain isp_nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "sv" masquerade
  }
}
EOF
ip -n t-l link add lan type bridge
ip -n t-l link set lan up
ip -n t-c link add lan0 type veth peer name c netns t-l
ip -n t-l link set c master lan
ip -n t-l link set c up
ip -n t-c addr add 198.18.100.1/24 dev lan0
ip -n t-c link set lan0 up
ip -n t-h1 link add lan0 type veth peer name h1 netns t-l
ip -n t-l link set h1 master lan
ip -n t-l link set h1 up
ip -n t-h1 addr add 198.18.100.101/24 dev lan0
ip -n t-h1 link set lan0 up
ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100
ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=0
ip -n t-h1 route replace default via 198.18.100.1 dev lan0`;

describe('topology: LAN machines and hosts', () => {
  it('builds a 3-machine LAN, each machine with its own uplink, exactly as expected', () => {
    assert.equal(formatCommands(setupCommands(lanPlan)), EXPECTED_LAN_SETUP);
  });

  it('builds a LAN host routed through the client, forwarding on and no NAT, exactly as expected', () => {
    const text = formatCommands(setupCommands(hostPlan));
    assert.equal(text, EXPECTED_HOST_SETUP);
    assert.doesNotMatch(text, /ip netns exec t-c nft/, 'the gateway NAT is the product under test’s job');
  });

  it('turns on forwarding in the client only when there are LAN hosts', () => {
    const forwarding = (p: typeof plan) =>
      formatCommands(setupCommands(p))
        .split('\n')
        .filter((l) => l.includes('ip_forward') && !/ t-i\d /.test(l));
    assert.deepEqual(forwarding(plan), []);
    assert.deepEqual(forwarding(lanPlan), []);
    assert.deepEqual(forwarding(hostPlan), ['ip netns exec t-c sysctl -qw net.ipv4.ip_forward=1']);
  });

  it('describes machines, LAN hosts and uplink owners', () => {
    assert.deepEqual(lanPlan.machines, [
      { index: 0, ns: 't-c', lanAddress: '198.18.100.1', uplinks: [0] },
      { index: 1, ns: 't-n1', lanAddress: '198.18.100.2', uplinks: [1] },
      { index: 2, ns: 't-n2', lanAddress: '198.18.100.3', uplinks: [2] },
    ]);
    assert.deepEqual(
      lanPlan.uplinks.map((u) => [u.dev, u.machine, u.hostNs, u.address, u.metric]),
      [
        ['up0', 0, 't-c', '198.18.1.2', 100],
        ['up1', 1, 't-n1', '198.18.2.2', 100],
        ['up2', 2, 't-n2', '198.18.3.2', 100],
      ],
    );
    assert.deepEqual(lanPlan.lan, {
      ns: 't-l',
      bridge: 'lan',
      subnet: '198.18.100.0/24',
      gateway: '198.18.100.1',
    });
    assert.deepEqual(hostPlan.lanHosts, [{ index: 1, ns: 't-h1', lanAddress: '198.18.100.101' }]);
    assert.deepEqual(plan.machines, [{ index: 0, ns: 't-c', lanAddress: '', uplinks: [0, 1] }]);
    assert.equal(plan.lan, undefined, 'one machine and no LAN host: no LAN');
    assert.deepEqual(plan.lanHosts, []);
  });

  it('numbers metrics per machine and routes every machine over its own uplinks only', () => {
    const p = planTopology({ prefix: 't-', machines: [0, 1, 0] });
    assert.deepEqual(
      p.uplinks.map((u) => [u.dev, u.hostNs, u.metric]),
      [
        ['up0', 't-c', 100],
        ['up1', 't-n1', 100],
        ['up2', 't-c', 101],
      ],
    );
    assert.equal(
      formatCommands(routeCommands(p, { ecmp: false, down: new Set([2]) })),
      [
        'ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100',
        'ip -n t-c route del default metric 101',
        'ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=0',
        'ip -n t-n1 route replace default via 198.18.2.1 dev up1 metric 100',
        'ip netns exec t-n1 sysctl -qw net.ipv4.fib_multipath_hash_policy=0',
      ].join('\n'),
    );
    assert.equal(
      formatCommands(routeCommands(p, { ecmp: true, down: new Set() })),
      [
        'ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=1',
        'ip -n t-c route replace default metric 100 nexthop via 198.18.1.1 dev up0 weight 1 nexthop via 198.18.3.1 dev up2 weight 1',
        'ip -n t-c route del default metric 101',
        'ip netns exec t-n1 sysctl -qw net.ipv4.fib_multipath_hash_policy=1',
        'ip -n t-n1 route replace default metric 100 nexthop via 198.18.2.1 dev up1 weight 1',
      ].join('\n'),
    );
  });

  it('gives a client without uplinks no routes (it reaches out only through the nodes)', () => {
    const p = planTopology({ prefix: 't-', machines: [1, 2] });
    assert.deepEqual(p.machines[0]?.uplinks, []);
    assert.doesNotMatch(formatCommands(routeCommands(p, { ecmp: true, down: new Set() })), / t-c /);
  });

  it('takes a node’s uplink down in the node’s namespace', () => {
    assert.equal(
      formatCommands(linkStateCommands(lanPlan, 1, true, 'admin')),
      ['ip -n t-n1 link set up1 up', 'ip -n t-n1 neigh flush dev up1', 'ip -n t-i1 neigh flush dev cl'].join(
        '\n',
      ),
    );
    assert.equal(
      formatCommands(linkStateCommands(lanPlan, 2, false, 'carrier')),
      'ip -n t-i2 link set cl down',
    );
    assert.deepEqual(blackholeCommands(lanPlan, 2, true)[0]?.args, [
      'netns',
      'exec',
      't-i2',
      'nft',
      '-f',
      '-',
    ]);
  });

  it('masquerades LAN sources out of every client uplink for the gateway baseline, idempotently', () => {
    const p = planTopology({ prefix: 't-', machines: [0, 1, 0], lanHosts: 2 });
    assert.equal(
      formatCommands(gatewayMasqueradeCommands(p, true)),
      `ip netns exec t-c nft -f - <<'EOF'
table inet lmxtb_masq {}
delete table inet lmxtb_masq
table inet lmxtb_masq {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 198.18.100.0/24 oifname { "up0", "up2" } masquerade
  }
}
EOF`,
    );
    assert.equal(
      formatCommands(gatewayMasqueradeCommands(p, false)),
      `ip netns exec t-c nft -f - <<'EOF'
table inet lmxtb_masq {}
delete table inet lmxtb_masq
EOF`,
    );
  });
});
