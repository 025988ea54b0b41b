/**
 * The probe targets a daemon starts with: the user's `health.targets` when the
 * config sets them (exactly those, even []), else `defaultProbeTargets` of this
 * system's nameservers, read once at start. A failure to read them costs only
 * the dns:// targets (logged), never the start.
 */
import { systemNameservers } from '../dns/resolv-conf.js';
import { describe } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { defaultProbeTargets, type HealthConfig } from './config.js';
import { formatProbeTarget } from './probe-target.js';

export async function healthAtStart(
  health: HealthConfig,
  configured: boolean,
  logger: Logger,
  nameservers: () => Promise<string[]> = systemNameservers,
): Promise<HealthConfig> {
  if (configured) return health;
  let found: string[] = [];
  try {
    found = await nameservers();
  } catch (err) {
    logger.warn(`health: cannot read the system's nameservers (${describe(err)}); probing public hosts only`);
  }
  const targets = defaultProbeTargets(found);
  logger.info(
    `health: probing ${targets.map(formatProbeTarget).join(', ')} (default; set health.targets to choose)`,
  );
  return { ...health, targets };
}
