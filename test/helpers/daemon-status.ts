/**
 * A fixed DaemonStatus with three links, one in each health state, shared by
 * the status rendering and control API tests. The daemon's "now" is
 * startedAt + uptimeSeconds = 2026-11-20T11:02:03Z.
 */
import type { DaemonStatus } from '../../src/control/status-types.js';

export function threeLinkStatus(): DaemonStatus {
  return {
    version: '0.1.0',
    startedAt: '2026-11-20T10:00:00.000Z',
    uptimeSeconds: 3723,
    policy: 'adaptive',
    listen: { socks: '127.0.0.1:1080', http: '127.0.0.1:8080', control: '/run/linkmux.sock' },
    connections: { active: 6, total: 1234, failed: 3 },
    links: [
      {
        id: 'up0',
        description: 'eth0 198.18.1.2 via 198.18.1.1 (SO_BINDTODEVICE)',
        state: 'online',
        since: '2026-11-20T10:00:05.000Z',
        rttMs: 12.4,
        rateIn: 1_000_000,
        rateOut: 125_000,
        capacity: 1_000_000,
        activeConnections: 5,
        bytesIn: 5 * 1024 ** 3,
        bytesOut: 123_456_789,
        connectFailures: 0,
      },
      {
        id: 'up1',
        description: 'wlan0 198.18.2.2 via 198.18.2.1 (SO_BINDTODEVICE)',
        state: 'degraded',
        since: '2026-11-20T11:01:20.000Z',
        rttMs: 640,
        rateIn: 250_000,
        rateOut: 500,
        activeConnections: 1,
        bytesIn: 2048,
        bytesOut: 512,
        connectFailures: 1,
        lastFailure: { at: '2026-11-20T11:01:20.000Z', reason: 'slow probe (640 ms)' },
      },
      {
        id: 'up2',
        description: 'usb0 198.18.3.2 via 198.18.3.1 (source address)',
        state: 'offline',
        since: '2026-11-20T10:55:00.000Z',
        rateIn: 0,
        rateOut: 0,
        capacity: 1_250_000,
        activeConnections: 0,
        bytesIn: 0,
        bytesOut: 0,
        connectFailures: 7,
        lastFailure: { at: '2026-11-20T11:01:58.000Z', reason: 'probe timeout after 1000 ms' },
      },
    ],
  };
}
