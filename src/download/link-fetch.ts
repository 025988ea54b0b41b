/**
 * How a download sends its GETs over each link: http:// over the slot's own
 * keep-alive connection of the link, with Node's http client (node-http.ts),
 * https:// through the link's undici agent (certificate checks, session reuse).
 * Agents, and undici itself, are loaded on first use: an http download never
 * loads undici, which cost ~90 ms and 0.09 CPU-s of start-up for its first
 * request, and whose body path cost 2.25 CPU-s/GiB at 3 × 400 Mbit/s where
 * node:http costs 1.56 (issue 15).
 */
import type { Agent } from 'undici';
import type { Link } from '../links/link.js';
import type { LinkAgentOptions } from '../links/link-agent.js';
import { httpGet, requestHeaders, type RangeResponse, type RequestOptions } from './http-request.js';
import type { LinkHttpClient } from './node-http.js';

/** One GET, over a given link. */
export type Fetch = (url: URL, opts: RequestOptions) => Promise<RangeResponse>;

const never = new AbortController().signal;

export class LinkFetchers {
  private readonly agents: (Promise<Agent> | undefined)[] = [];

  constructor(
    private readonly links: readonly Link[],
    private readonly opts: LinkAgentOptions,
  ) {}

  /** The undici agent of link `i`, created (and undici loaded) on first use. */
  agent(i: number): Promise<Agent> {
    let a = this.agents[i];
    if (!a) {
      const link = this.links[i] as Link;
      a = import('../links/link-agent.js').then((m) => m.createLinkAgent(link, this.opts));
      this.agents[i] = a;
    }
    return a;
  }

  /** GETs over link `i`; http:// goes over `slot`, the caller's own connection. */
  fetch(i: number, slot: LinkHttpClient): Fetch {
    return async (url, opts) => {
      if (url.protocol === 'http:') {
        return slot.get({
          url,
          headers: requestHeaders(url, opts.headers),
          signal: opts.signal ?? never,
          stallTimeoutMs: opts.stallTimeoutMs,
          connectTimeoutMs: this.opts.connectTimeoutMs,
        });
      }
      return httpGet(await this.agent(i), url, opts);
    };
  }

  /** Destroys the agents that were created. */
  async destroy(): Promise<void> {
    const started = this.agents.filter((a): a is Promise<Agent> => a !== undefined);
    await Promise.allSettled(started.map(async (a) => (await a).destroy()));
  }
}
