/**
 * Per-namespace /etc files through iproute2's standard mechanism: `ip netns exec
 * NS` bind-mounts every file of /etc/netns/NS/ over /etc/ in the private mount
 * namespace of the command it runs. The testbed uses it to give its machines a
 * resolv.conf that names the testbed's DNS server, so the system resolver (and
 * anything using it) asks that server, through the machine's main default route,
 * as on a real host. It is a file, not a network change: the root namespace's
 * resolver and every other namespace are unaffected.
 *
 * Guarantees: the plan is pure (unit-tested); only /etc/netns/<ns> directories of
 * the testbed's own namespaces are written or removed, never /etc/netns itself.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

export const NETNS_ETC = '/etc/netns';

export interface EtcFile {
  path: string;
  content: string;
}

/** resolv.conf naming `nameserver` for each namespace (short timeout: a test waits less). */
export function resolvConfFiles(
  namespaces: readonly string[],
  nameserver: string,
  root = NETNS_ETC,
): EtcFile[] {
  const content = [
    '# written by the linkmux testbed; removed with its namespaces',
    `nameserver ${nameserver}`,
    'options timeout:1 attempts:2',
    '',
  ].join('\n');
  return namespaces.map((ns) => ({ path: path.join(root, ns, 'resolv.conf'), content }));
}

/** The directories holding `files` (one per namespace). */
export function etcDirs(files: readonly EtcFile[]): string[] {
  return [...new Set(files.map((f) => path.dirname(f.path)))];
}

export async function writeEtcFiles(files: readonly EtcFile[]): Promise<void> {
  for (const f of files) {
    await mkdir(path.dirname(f.path), { recursive: true });
    await writeFile(f.path, f.content);
  }
}

export async function removeEtcDirs(dirs: readonly string[]): Promise<void> {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}
