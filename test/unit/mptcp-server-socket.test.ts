/**
 * `linkmux server` sets its subflows' congestion control on the listening
 * socket (relay/server-socket.ts): the exact setsockopt it makes, and what it
 * says when the kernel refuses (the default then stays). A real socket too,
 * where koffi and MPTCP are available: an unknown algorithm is refused by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Libc } from '../../src/net/bind-device.js';
import { SERVER_CONGESTION, setListenerCongestion } from '../../src/relay/server-socket.js';
import { bindMptcpListener, closeFd, mptcpSupport } from '../../src/net/mptcp-socket.js';

function fakeLibc(result: number, errno = ''): Libc & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    socket: () => -1,
    setsockopt: (fd, level, name, value, len) => {
      calls.push([fd, level, name, value.toString(), len]);
      return result;
    },
    bind: () => -1,
    inetPton: () => 0,
    close: () => 0,
    errno: () => 2,
    errnoName: () => errno,
  };
}

test('the default is cubic, set as IPPROTO_TCP/TCP_CONGESTION with the name unterminated', () => {
  assert.equal(SERVER_CONGESTION, 'cubic');
  const libc = fakeLibc(0);
  assert.equal(setListenerCongestion(7, 'cubic', libc), undefined);
  assert.deepEqual(libc.calls, [[7, 6, 13, 'cubic', 5]]);
});

test('a refusal is explained, never thrown', () => {
  assert.match(
    setListenerCongestion(7, 'nope', fakeLibc(-1, 'ENOENT')) ?? '',
    /no "nope" congestion control.*system default/,
  );
  assert.match(
    setListenerCongestion(7, 'vegas', fakeLibc(-1, 'EPERM')) ?? '',
    /"vegas" is not in net.ipv4.tcp_allowed_congestion_control/,
  );
  assert.match(setListenerCongestion(7, 'cubic', fakeLibc(-1, 'EBADF')) ?? '', /failed with EBADF/);
  assert.match(setListenerCongestion(7, 'cubic', null) ?? '', /libc is not available/);
});

test(
  'on a real MPTCP listener: cubic is accepted, an unknown algorithm refused by name',
  { skip: process.platform !== 'linux' || !mptcpSupport().available ? 'no kernel MPTCP here' : false },
  () => {
    const fd = bindMptcpListener('127.0.0.1', 0);
    try {
      assert.equal(setListenerCongestion(fd, 'cubic'), undefined);
      assert.match(setListenerCongestion(fd, 'no-such-cc') ?? '', /no "no-such-cc" congestion control/);
    } finally {
      closeFd(fd);
    }
  },
);
