/** Shared by every command that uses links: discover interfaces, apply --link, build LocalLinks. */
import { discoverInterfaces } from '../net/interfaces.js';
import { createLocalLinks, selectUplinks } from '../links/select.js';
import type { BindModeRequest } from '../links/local-link.js';
import type { Link } from '../links/link.js';
import { ExecRunner } from '../util/runner.js';
import type { Logger } from '../util/logger.js';

export async function openLinks(requested: string[], mode: BindModeRequest, logger: Logger): Promise<Link[]> {
  const interfaces = await discoverInterfaces(new ExecRunner());
  return createLocalLinks(selectUplinks(interfaces, requested), { mode, logger });
}
