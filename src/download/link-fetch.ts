/**
 * How a download sends its GETs over each link: http:// over plain keep-alive
 * connections of the link (plain-http.ts), https:// and any origin whose reply
 * plain-http cannot read through the link's undici agent. Agents, and undici
 * itself, are loaded on first use: an http download never loads undici, which
 * cost ~90 ms and 0.09 CPU-s of start-up for its first request.
 */
import type { Agent } from 'undici';
import type { Link } from '../links/link.js';
import type { LinkAgentOptions } from '../links/link-agent.js';
import { httpGet, requestHeaders, type RangeResponse, type RequestOptions } from './http-request.js';
import { LinkHttpClient, type LinkRequest } from './node-http.js';
import { PlainHttpClient, PlainHttpUnsupported } from './plain-http.js';

/** One slot's own keep-alive connection for http:// requests. */
export interface SlotClient {
  get(req: LinkRequest): Promise<RangeResponse>;
  close(): void;
}

// TEMPORARY A/B switch (issue 15 measurement): plain | node | undici.
const CLIENT = process.env.LINKMUX_HTTP_CLIENT ?? 'node';

export function slotClient(link: Link): SlotClient {
  return CLIENT === 'plain' ? new PlainHttpClient(link) : new LinkHttpClient(link);
}

/** One GET, over a given link. */
export type Fetch = (url: URL, opts: RequestOptions) => Promise<RangeResponse>;

const never = new AbortController().signal;

export class LinkFetchers {
  private readonly agents: (Promise<Agent> | undefined)[] = [];
  /** Origins that answered something plain-http leaves to undici (chunked, close-delimited). */
  private readonly undiciOrigins = new Set<string>();

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

  /** GETs over link `i`; http:// goes over `plain`, the caller's own connection. */
  fetch(i: number, plain: SlotClient): Fetch {
    return async (url, opts) => {
      if (CLIENT !== 'undici' && url.protocol === 'http:' && !this.undiciOrigins.has(url.origin)) {
        try {
          return await plain.get({
            url,
            headers: requestHeaders(url, opts.headers),
            signal: opts.signal ?? never,
            stallTimeoutMs: opts.stallTimeoutMs,
            connectTimeoutMs: this.opts.connectTimeoutMs,
          });
        } catch (err) {
          if (!(err instanceof PlainHttpUnsupported)) throw err;
          this.undiciOrigins.add(url.origin);
        }
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
