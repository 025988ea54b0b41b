// Fuzzing the HTTP proxy's target parsing (CONNECT authority, absolute URI):
// valid hosts and ports round-trip; random and mutated strings give either
// undefined (the documented "answer 400") or a target that keeps the module's
// guarantees — an IPv4/IPv6 literal or an ASCII DNS name spelled as sent
// (ASCII case aside), a port 1..65535, a path without spaces or controls, and
// nothing of a userinfo forwarded. Nothing throws.
// Runs: LINKMUX_FUZZ_RUNS / LINKMUX_FUZZ_SEED (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fc from 'fast-check';
import {
  formatAuthority,
  parseAbsoluteTarget,
  parseConnectTarget,
} from '../../src/proxy/http/http-target.js';
import type { Destination } from '../../src/links/link.js';
import { fuzzParams, testTimeout, timed } from '../helpers/fuzz.js';

/** ASCII-only lower case: what a DNS name compares as (toLowerCase also maps U+212A KELVIN SIGN to "k"). */
const asciiLower = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
const NAME = /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/;

/** The module's guarantee on any target it returns, and that `input` spelled it. */
function checkDestination(dst: Destination, input: string): void {
  const { host, port } = dst;
  assert.ok(Number.isInteger(port) && port >= 1 && port <= 65535, `port ${port}`);
  if (net.isIPv6(host)) {
    assert.ok(!host.includes('%'), 'no zone id');
    assert.ok(asciiLower(input).includes(`[${host}]`), `${host} was sent bracketed`);
  } else {
    assert.ok(
      net.isIPv4(host) || (NAME.test(host) && !/^[\d.]+$/.test(host)),
      `host ${JSON.stringify(host)}`,
    );
    assert.ok(
      asciiLower(input).includes(host),
      `${JSON.stringify(host)} is spelled in ${JSON.stringify(input)}`,
    );
  }
  // Round trip: the canonical text parses back to the same target.
  assert.deepEqual(parseConnectTarget(formatAuthority(dst)), dst);
}

// ---------------------------------------------------------------------------
// Generators

const hostArb = fc.oneof(
  fc.ipV4(),
  fc.ipV6().map((h) => `[${h}]`),
  fc.domain(),
  fc.mixedCase(fc.domain()),
  fc.constantFrom('localhost', 'a', 'my_host.lan', 'example.com.', '[::1]', '[::ffff:1.2.3.4]'),
);
const portTextArb = fc.oneof(
  fc.integer({ min: 1, max: 65535 }).map(String),
  fc.integer({ min: 1, max: 9999 }).map((p) => p.toString().padStart(5, '0')),
);

/** Characters that matter to an authority or a URI, odd Unicode that case-maps to ASCII, controls. */
const trickyChar = fc.constantFrom(
  ...'[]:@/?#%.-_ \t\r\n\0\x7f'.split(''),
  '\u212a', // KELVIN SIGN: toLowerCase() is "k"
  '\u0130', // I WITH DOT: toLowerCase() is "i̇"
  '\u017f', // LONG S
  '\uff11', // FULLWIDTH ONE
  '\u0661', // ARABIC-INDIC ONE
  'é',
);
const textArb = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...'abcdefxyzKEX0123456789'.split('')) },
      { weight: 3, arbitrary: trickyChar },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    ),
    maxLength,
  });

/** A string edited at random: characters replaced, inserted, removed. */
function edited(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    del: fc.integer({ min: 0, max: 3 }),
    ins: textArb(3),
  });
  return fc.tuple(base, fc.array(edit, { minLength: 1, maxLength: 3 })).map(([s, edits]) => {
    for (const e of edits) {
      const at = e.at % (s.length + 1);
      s = s.slice(0, at) + e.ins + s.slice(at + e.del);
    }
    return s;
  });
}

const authorityArb = fc.tuple(hostArb, portTextArb).map(([h, p]) => `${h}:${p}`);
const uriArb = fc
  .record({
    scheme: fc.constantFrom('http://', 'HTTP://', 'Http://'),
    userinfo: fc.constantFrom('', 'user@', 'user:pass@', 'evil.example@'),
    host: hostArb,
    port: fc.option(portTextArb, { nil: undefined }),
    path: fc.constantFrom('', '/', '/a/b?q=1', '?x', '/%7e/../x', '/#frag'),
  })
  .map((u) => `${u.scheme}${u.userinfo}${u.host}${u.port === undefined ? '' : `:${u.port}`}${u.path}`);

// ---------------------------------------------------------------------------
// Properties

test(
  'fuzz http target: a valid CONNECT authority parses to its host and port and round-trips',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(hostArb, fc.integer({ min: 1, max: 65535 }), (h, port) => {
        const dst = timed('parseConnectTarget', () => parseConnectTarget(`${h}:${port}`));
        assert.ok(dst, `${h}:${port} is valid`);
        const bare = h.startsWith('[') ? h.slice(1, -1) : h;
        assert.deepEqual(dst, { host: bare.toLowerCase(), port });
        checkDestination(dst, `${h}:${port}`);
      }),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz http target: a CONNECT without a port, with port 0 or 65536, an empty host or userinfo is refused',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(
        hostArb,
        fc.constantFrom(
          '',
          ':',
          ':0',
          ':00000',
          ':65536',
          ':99999',
          ':-1',
          ':+80',
          ': 80',
          ':80 ',
          ':0x50',
          ':８０',
        ),
        fc.constantFrom('', 'user@', 'u:p@'),
        (h, port, userinfo) => {
          assert.equal(parseConnectTarget(`${userinfo}${h}${port}`), undefined);
          if (userinfo !== '') assert.equal(parseConnectTarget(`${userinfo}${h}:443`), undefined);
          assert.equal(parseConnectTarget(`:${port}`), undefined);
        },
      ),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz http target: random and edited CONNECT targets are undefined or keep every guarantee',
  { timeout: testTimeout(1000) },
  () => {
    fc.assert(
      fc.property(fc.oneof(textArb(40), edited(authorityArb)), (text) => {
        const dst = timed('parseConnectTarget', () => parseConnectTarget(text));
        if (dst === undefined) return;
        checkDestination(dst, text);
        assert.ok(
          !/[\s@/?#%\0]/.test(text.slice(0, text.lastIndexOf(':'))),
          `no space, userinfo or path in ${JSON.stringify(text)}`,
        );
      }),
      fuzzParams(1000),
    );
  },
);

test(
  'fuzz http target: random and edited absolute URIs are undefined or keep every guarantee',
  { timeout: testTimeout(1000) },
  () => {
    fc.assert(
      fc.property(
        fc.oneof(
          uriArb,
          edited(uriArb),
          textArb(40).map((t) => `http://${t}`),
        ),
        (text) => {
          const t = timed('parseAbsoluteTarget', () => parseAbsoluteTarget(text));
          if (t === undefined) return;
          checkDestination(t.dst, text);
          assert.match(t.path, /^\/[\x21-\x7e\x80-\u{10ffff}]*$/u, 'origin-form, no space or control');
          assert.ok(!t.path.includes('#'), 'never the fragment');
          assert.equal(t.hostHeader, formatAuthority(t.dst, 80));
          assert.ok(!t.hostHeader.includes('@'), 'userinfo is not forwarded');
          assert.ok(/^http:\/\//i.test(text));
        },
      ),
      fuzzParams(1000),
    );
  },
);

test(
  'fuzz http target: a valid absolute URI keeps its host, port (default 80) and path',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(uriArb, (text) => {
        const t = parseAbsoluteTarget(text);
        assert.ok(t, text);
        const path = text.replace(/^http:\/\/[^/?#]*/i, '').replace(/#.*$/, '');
        assert.equal(t.path, path === '' ? '/' : path.startsWith('/') ? path : `/${path}`);
        assert.ok(!t.hostHeader.includes('@'));
      }),
      fuzzParams(300),
    );
  },
);
