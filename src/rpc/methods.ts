/**
 * The aria2 methods linkmux serves (the set AriaNg and the common browser
 * extensions call), each checking its parameters the way aria2 does and
 * answering with aria2's types. Token checks and system.* live in json-rpc.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { VERSION } from '../version.js';
import { fail, type MethodTable } from './json-rpc.js';
import { gidParam, intParam, num, page } from './aria2-values.js';
import type { DownloadManager } from './download-manager.js';
import { globalView, jobView, optionsParam } from './job-options.js';
import type { PositionHow } from './queue.js';
import { files, pick, statusOf, uris } from './status-view.js';

function keysParam(v: unknown, index: number): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((k) => typeof k !== 'string')) {
    throw fail(`The parameter at ${index} has wrong type.`);
  }
  return v as string[];
}

export function aria2Methods(m: DownloadManager): MethodTable {
  const sessionId = createHash('sha1').update(randomBytes(20)).digest('hex');
  const view = (gid: string, keys?: string[]) => {
    const rec = m.queue.find(gid);
    return pick(statusOf(rec, m.live(gid)), keys);
  };
  const OK = 'OK';
  return {
    'aria2.addUri': ([u, o, pos]) => {
      if (!Array.isArray(u) || u.some((x) => typeof x !== 'string')) {
        throw fail('The parameter at 0 has wrong type.');
      }
      const position = pos === undefined ? undefined : intParam(pos, 2);
      if (position !== undefined && position < 0) throw fail('The parameter at 2 has wrong type.');
      return m.add(u as string[], optionsParam(o, 1), position);
    },
    'aria2.remove': ([g]) => m.remove(gidParam(g)),
    'aria2.forceRemove': ([g]) => m.remove(gidParam(g)),
    'aria2.pause': ([g]) => m.pause(gidParam(g)),
    'aria2.forcePause': ([g]) => m.pause(gidParam(g)),
    'aria2.pauseAll': () => (m.pauseAll(), OK),
    'aria2.forcePauseAll': () => (m.pauseAll(), OK),
    'aria2.unpause': ([g]) => m.unpause(gidParam(g)),
    'aria2.unpauseAll': () => (m.unpauseAll(), OK),
    'aria2.changePosition': ([g, p, how]) => {
      if (how !== 'POS_SET' && how !== 'POS_CUR' && how !== 'POS_END') {
        throw fail('Illegal argument.');
      }
      return m.move(gidParam(g), intParam(p, 1), how as PositionHow);
    },
    'aria2.tellStatus': ([g, k]) => view(gidParam(g), keysParam(k, 1)),
    'aria2.getUris': ([g]) => uris(m.queue.find(gidParam(g))),
    'aria2.getFiles': ([g]) => {
      const gid = gidParam(g);
      return files(m.queue.find(gid), m.live(gid));
    },
    'aria2.getServers': ([g]) => {
      const gid = gidParam(g);
      const rec = m.queue.find(gid);
      const live = m.live(gid);
      if (rec.status !== 'active' || !live) throw fail(`No active download for GID#${gid}`);
      const uri = rec.uris[0] ?? '';
      return [
        {
          index: '1',
          servers: live.links
            .filter((l) => l.active > 0)
            .map((l) => ({ currentUri: uri, downloadSpeed: num(l.rate), uri })),
        },
      ];
    },
    'aria2.getPeers': ([g]) => {
      m.queue.find(gidParam(g));
      return [];
    },
    'aria2.tellActive': ([k]) => {
      const keys = keysParam(k, 0);
      return m.queue.activeList().map((r) => pick(statusOf(r, m.live(r.gid)), keys));
    },
    'aria2.tellWaiting': ([o, n, k]) => {
      const keys = keysParam(k, 2);
      return page(m.queue.waitingList(), intParam(o, 0), intParam(n, 1)).map((r) =>
        pick(statusOf(r, undefined), keys),
      );
    },
    'aria2.tellStopped': ([o, n, k]) => {
      const keys = keysParam(k, 2);
      return page(m.queue.stoppedList(), intParam(o, 0), intParam(n, 1)).map((r) =>
        pick(statusOf(r, undefined), keys),
      );
    },
    'aria2.getOption': ([g]) => jobView(m.queue.find(gidParam(g)).options),
    'aria2.changeOption': ([g, o]) => (m.changeOption(gidParam(g), optionsParam(o, 1)), OK),
    'aria2.getGlobalOption': () => globalView(m.globalOptions),
    'aria2.changeGlobalOption': ([o]) => (m.changeGlobal(optionsParam(o, 0)), OK),
    'aria2.getGlobalStat': () => {
      const s = m.stats();
      return {
        downloadSpeed: num(s.downloadSpeed),
        numActive: num(s.numActive),
        numStopped: num(s.numStopped),
        numStoppedTotal: num(s.numStoppedTotal),
        numWaiting: num(s.numWaiting),
        uploadSpeed: '0',
      };
    },
    'aria2.purgeDownloadResult': () => (m.purge(), OK),
    'aria2.removeDownloadResult': ([g]) => (m.removeResult(gidParam(g)), OK),
    'aria2.getVersion': () => ({ enabledFeatures: ['HTTPS', 'Message Digest'], version: VERSION }),
    'aria2.getSessionInfo': () => ({ sessionId }),
    'aria2.saveSession': async () => (await m.saveNow(), OK),
  };
}
