/** `health`: active probes through each link and the thresholds that change its state. */
import { z } from 'zod';
import { DEFAULT_HEALTH_CONFIG } from '../../health/config.js';
import { count, duration, probeTarget } from '../fields.js';

const healthDefaults = DEFAULT_HEALTH_CONFIG;

export const healthSchema = z
  .strictObject({
    /** Seconds between two probe rounds of one link. Default 1. */
    interval: duration(0.05, 3600).default(healthDefaults.intervalMs / 1000),
    /**
     * Seconds a probe may take before it counts as failed. Default 0.5. A dead link
     * is offline at most interval + failThreshold × timeout after it broke (2.5 s).
     */
    timeout: duration(0.01, 60).default(healthDefaults.timeoutMs / 1000),
    /** Consecutive failed rounds before a link is offline. Default 3. */
    failThreshold: count(1, 100).default(healthDefaults.failThreshold),
    /** Consecutive good rounds before a link is back. Default 2. */
    riseThreshold: count(1, 100).default(healthDefaults.riseThreshold),
    /** Seconds: a probe slower than this makes a link degraded; not below timeout = off. Default 0.5. */
    slowRtt: duration(0.001, 60).default(healthDefaults.slowRttMs / 1000),
    /**
     * tcp://HOST:PORT, dns://IP[:PORT] or http(s) URLs; a round succeeds when any
     * answers; [] = passive checks only. Unset = the defaults: TCP 443 of four
     * public hosts plus dns:// of this system's public nameservers, read at
     * start (health/config.ts defaultProbeTargets), so `config show` omits it.
     */
    targets: z.array(probeTarget).optional(),
  })
  .prefault({});
