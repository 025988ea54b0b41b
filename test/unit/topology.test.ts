// The testbed topology as commands: compared with expected text, as in tailscale's router tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLinkmuxError } from '../../src/util/errors.js';
import {
  allNamespaces,
  formatCommands,
  gatewayMasqueradeCommands,
  isTolerant,
  planTopology,
  routeCommands,
  setupCommands,
  tbfArgs,
  teardownCommands,
} from '../../src/testbed/topology.js';
import { hostPlan, lanPlan, plan } from '../helpers/topology-plans.js';
import { blackholeCommands, linkStateCommands } from '../../src/testbed/faults.js';

const EXPECTED_SETUP = `ip netns add t-c
ip netns add t-s
ip netns add t-i0
ip netns add t-i1
ip -n t-c link set lo up
ip netns exec t-c sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-c sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-s link set lo up
ip netns exec t-s sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-s sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i0 link set lo up
ip netns exec t-i0 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip -n t-i1 link set lo up
ip netns exec t-i1 sysctl -qw net.ipv4.conf.all.rp_filter=0
ip netns exec t-i1 sysctl -qw net.ipv4.conf.default.rp_filter=0
ip netns exec t-i0 sysctl -qw net.ipv4.ip_forward=1
ip netns exec t-i1 sysctl -qw net.ipv4.ip_forward=1
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
ip -n t-c link add up1 type veth peer name cl netns t-i1
ip -n t-i1 link add sv type veth peer name isp1 netns t-s
ip -n t-s link set isp1 master br0
ip -n t-s link set isp1 up
ip -n t-c addr add 198.18.2.2/24 dev up1
ip -n t-c link set up1 up
ip -n t-i1 addr add 198.18.2.1/24 dev cl
ip -n t-i1 link set cl up
ip -n t-i1 addr add 198.19.0.2/24 dev sv
ip -n t-i1 link set sv up
tc -n t-c qdisc replace dev up1 root tbf rate 4mbit burst 15000 latency 50ms
tc -n t-i1 qdisc replace dev cl root tbf rate 4mbit burst 15000 latency 50ms
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
ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100
ip -n t-c route replace default via 198.18.2.1 dev up1 metric 101
ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=0`;

describe('topology', () => {
  it('builds 2 links at 8/4 Mbit exactly as expected', () => {
    assert.equal(formatCommands(setupCommands(plan)), EXPECTED_SETUP);
  });

  it('shapes both directions of every uplink with its own rate', () => {
    const tc = formatCommands(setupCommands(plan))
      .split('\n')
      .filter((l) => l.startsWith('tc '));
    assert.deepEqual(tc, [
      'tc -n t-c qdisc replace dev up0 root tbf rate 8mbit burst 15000 latency 50ms',
      'tc -n t-i0 qdisc replace dev cl root tbf rate 8mbit burst 15000 latency 50ms',
      'tc -n t-c qdisc replace dev up1 root tbf rate 4mbit burst 15000 latency 50ms',
      'tc -n t-i1 qdisc replace dev cl root tbf rate 4mbit burst 15000 latency 50ms',
    ]);
  });

  it('gives the client one default route per uplink with rising metrics and no source rules', () => {
    const text = formatCommands(setupCommands(plan));
    const routes = text.split('\n').filter((l) => l.includes(' route '));
    assert.deepEqual(routes, [
      'ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100',
      'ip -n t-c route replace default via 198.18.2.1 dev up1 metric 101',
    ]);
    assert.doesNotMatch(text, / rule /);
  });

  it('never touches the root namespace', () => {
    for (const p of [plan, lanPlan, hostPlan]) {
      for (const c of setupCommands(p)) {
        const line = [c.cmd, ...c.args].join(' ');
        assert.match(line, /^(ip netns add t-|ip -n t-|ip netns exec t-|tc -n t-)/, line);
      }
    }
  });

  it('switches to one multipath route with an L4 hash and back', () => {
    assert.equal(
      formatCommands(routeCommands(plan, { ecmp: true, down: new Set() })),
      [
        'ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=1',
        'ip -n t-c route replace default metric 100 nexthop via 198.18.1.1 dev up0 weight 1 nexthop via 198.18.2.1 dev up1 weight 1',
        'ip -n t-c route del default metric 101',
      ].join('\n'),
    );
    assert.equal(
      formatCommands(routeCommands(plan, { ecmp: false, down: new Set() })),
      [
        'ip -n t-c route replace default via 198.18.1.1 dev up0 metric 100',
        'ip -n t-c route replace default via 198.18.2.1 dev up1 metric 101',
        'ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=0',
      ].join('\n'),
    );
  });

  it('leaves links that are down out of the routes', () => {
    assert.equal(
      formatCommands(routeCommands(plan, { ecmp: true, down: new Set([0]) })),
      [
        'ip netns exec t-c sysctl -qw net.ipv4.fib_multipath_hash_policy=1',
        'ip -n t-c route replace default metric 100 nexthop via 198.18.2.1 dev up1 weight 1',
        'ip -n t-c route del default metric 101',
      ].join('\n'),
    );
    const off = routeCommands(plan, { ecmp: false, down: new Set([0]) });
    assert.equal(
      formatCommands(off.slice(0, 2)),
      [
        'ip -n t-c route del default metric 100',
        'ip -n t-c route replace default via 198.18.2.1 dev up1 metric 101',
      ].join('\n'),
    );
    assert.ok(off[0] && isTolerant(off[0]), 'deleting a route already gone is tolerated');
    assert.ok(off[1] && !isTolerant(off[1]));
  });

  it('blackholes inside the ISP namespace only, idempotently', () => {
    const on = blackholeCommands(plan, 1, true);
    assert.equal(on.length, 1);
    assert.deepEqual(on[0]?.args, ['netns', 'exec', 't-i1', 'nft', '-f', '-']);
    assert.match(on[0]?.input ?? '', /^table ip linkmux_blackhole \{\}\ndelete table ip linkmux_blackhole\n/);
    for (const hook of ['forward', 'input', 'output']) {
      assert.match(on[0]?.input ?? '', new RegExp(`hook ${hook} priority -10; policy drop;`));
    }
    assert.equal(
      blackholeCommands(plan, 1, false)[0]?.input,
      'table ip linkmux_blackhole {}\ndelete table ip linkmux_blackhole\n',
    );
  });

  it('takes a link down on the client side (admin) or the ISP side (carrier)', () => {
    assert.equal(formatCommands(linkStateCommands(plan, 1, false, 'admin')), 'ip -n t-c link set up1 down');
    assert.equal(
      formatCommands(linkStateCommands(plan, 1, true, 'carrier')),
      ['ip -n t-i1 link set cl up', 'ip -n t-c neigh flush dev up1', 'ip -n t-i1 neigh flush dev cl'].join(
        '\n',
      ),
    );
    assert.equal(
      formatCommands(linkStateCommands(plan, 0, true, 'admin')),
      ['ip -n t-c link set up0 up', 'ip -n t-c neigh flush dev up0', 'ip -n t-i0 neigh flush dev cl'].join(
        '\n',
      ),
    );
  });

  it('tears down machines, LAN hosts and the LAN bridge too', () => {
    const p = planTopology({ prefix: 't-', machines: [0, 1], lanHosts: 2 });
    assert.deepEqual(allNamespaces(p), ['t-c', 't-n1', 't-h1', 't-h2', 't-l', 't-s', 't-i0', 't-i1']);
    assert.equal(
      formatCommands(teardownCommands(p)),
      allNamespaces(p)
        .map((ns) => `ip netns del ${ns}`)
        .join('\n'),
    );
  });

  it('tears down every namespace', () => {
    assert.equal(
      formatCommands(teardownCommands(plan)),
      'ip netns del t-c\nip netns del t-s\nip netns del t-i0\nip netns del t-i1',
    );
  });

  it('sizes the token bucket for the rate', () => {
    assert.deepEqual(tbfArgs(8), ['tbf', 'rate', '8mbit', 'burst', '15000', 'latency', '50ms']);
    assert.deepEqual(tbfArgs(100), ['tbf', 'rate', '100mbit', 'burst', '125000', 'latency', '50ms']);
    assert.deepEqual(tbfArgs(0.5).slice(0, 3), ['tbf', 'rate', '500kbit']);
  });

  it('names namespaces from the prefix and defaults to 3 links at 8 Mbit/s', () => {
    const p = planTopology({ prefix: 'lmx-42-ab12-' });
    assert.equal(p.clientNs, 'lmx-42-ab12-c');
    assert.equal(p.serverNs, 'lmx-42-ab12-s');
    assert.deepEqual(
      p.uplinks.map((u) => [u.dev, u.address, u.gateway, u.ispNs, u.rateMbit, u.metric]),
      [
        ['up0', '198.18.1.2', '198.18.1.1', 'lmx-42-ab12-i0', 8, 100],
        ['up1', '198.18.2.2', '198.18.2.1', 'lmx-42-ab12-i1', 8, 101],
        ['up2', '198.18.3.2', '198.18.3.1', 'lmx-42-ab12-i2', 8, 102],
      ],
    );
    assert.equal(p.serverAddress, '198.19.0.10');
  });

  it('rejects bad options with LINKMUX_ERR_USAGE', () => {
    const usage = (e: unknown) => isLinkmuxError(e, 'LINKMUX_ERR_USAGE');
    assert.throws(() => planTopology({ prefix: 't-', links: 0 }), usage);
    assert.throws(() => planTopology({ prefix: 't-', links: 10 }), usage);
    assert.throws(() => planTopology({ prefix: 't-', links: 2, rateMbit: [8] }), usage);
    assert.throws(() => planTopology({ prefix: 't-', rateMbit: -1 }), usage);
    assert.throws(() => planTopology({ prefix: 'bad prefix; rm' }), usage);
    assert.throws(() => blackholeCommands(plan, 5, true), usage);
    assert.throws(() => planTopology({ prefix: 't-', links: 3, machines: [0, 1] }), usage);
    assert.throws(() => planTopology({ prefix: 't-', machines: [0, 2] }), usage, 'node 1 owns nothing');
    assert.throws(() => planTopology({ prefix: 't-', machines: [0, -1] }), usage);
    assert.throws(() => planTopology({ prefix: 't-', machines: [0, 1.5] }), usage);
    assert.throws(() => planTopology({ prefix: 't-', lanHosts: 10 }), usage);
    assert.throws(() => planTopology({ prefix: 't-', lanHosts: -1 }), usage);
    assert.throws(() => gatewayMasqueradeCommands(plan, true), usage, 'no LAN hosts');
    assert.throws(() => gatewayMasqueradeCommands(lanPlan, true), usage, 'no LAN hosts');
    assert.throws(
      () => gatewayMasqueradeCommands(planTopology({ prefix: 't-', machines: [1], lanHosts: 1 }), true),
      usage,
      'a gateway without uplinks',
    );
  });

  it('takes the number of links from machines when links is not given', () => {
    assert.equal(planTopology({ prefix: 't-', machines: [0, 0, 1, 1, 2] }).uplinks.length, 5);
  });
});

describe('farServer option', () => {
  const plain = planTopology({ prefix: 't-', links: 2 });
  const far = planTopology({ prefix: 't-', links: 2, farServer: true });
  it('adds one namespace on the server bridge and leaves every other command as it was', () => {
    assert.deepEqual(far.farServer, { ns: 't-f', address: '198.19.0.20', dev: 'eth0', bridgePort: 'far' });
    assert.deepEqual(allNamespaces(far), [...allNamespaces(plain), 't-f']);
    const lines = (p: typeof far) => formatCommands(setupCommands(p)).split('\n');
    const extra = lines(far).filter((l) => !lines(plain).includes(l));
    assert.deepEqual(extra, [
      'ip netns add t-f',
      'ip -n t-f link set lo up',
      'ip netns exec t-f sysctl -qw net.ipv4.conf.all.rp_filter=0',
      'ip netns exec t-f sysctl -qw net.ipv4.conf.default.rp_filter=0',
      'ip -n t-f link add eth0 type veth peer name far netns t-s',
      'ip -n t-s link set far master br0',
      'ip -n t-s link set far up',
      'ip -n t-f addr add 198.19.0.20/24 dev eth0',
      'ip -n t-f link set eth0 up',
    ]);
    assert.equal(plain.farServer, undefined);
  });
});
