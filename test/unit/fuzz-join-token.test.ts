// Fuzzing join-token decoding: valid tokens round-trip (also quoted, wrapped
// and indented as a terminal pastes them); every single-character change of a
// valid token is caught by the checksum or the format; random strings, mutated
// tokens and random payloads with a correct checksum give only
// LINKMUX_ERR_TOKEN or the identical token, and no message holds the secret.
// Runs: LINKMUX_FUZZ_RUNS / LINKMUX_FUZZ_SEED (test/helpers/fuzz.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { TOKEN_PREFIX, decodeJoinToken, encodeJoinToken } from '../../src/links/join-token.js';
import type { JoinToken } from '../../src/links/join-token.js';
import { isLinkmuxError } from '../../src/util/errors.js';
import { FUZZ_SEED, fuzzParams, fuzzRuns, testTimeout, timed } from '../helpers/fuzz.js';

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Decodes, and fails on anything thrown but a LINKMUX_ERR_TOKEN; its message must not hold `secret`. */
function decodeOrTokenError(text: string, secret?: string): JoinToken | undefined {
  try {
    return timed('decodeJoinToken', () => decodeJoinToken(text));
  } catch (err) {
    assert.ok(isLinkmuxError(err, 'LINKMUX_ERR_TOKEN'), `only LINKMUX_ERR_TOKEN, got ${String(err)}`);
    if (secret) assert.ok(!err.message.includes(secret), 'the secret is in no message');
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Generators

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
const tokenArb: fc.Arbitrary<JoinToken> = fc
  .record({
    name: fc.stringMatching(/^[A-Za-z0-9._-]{1,32}$/),
    host: fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => [...l, 'lan'].join('.')),
    ),
    port: fc.integer({ min: 1, max: 65535 }),
    fingerprint: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
    secret: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64url')),
    links: fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9._@+-]{1,32}$/), { maxLength: 16 }),
  })
  // fc.record builds null-prototype objects; decode returns plain ones.
  .map((t) => ({ ...t }));

/** Ways a terminal or a mail client wraps a pasted token. */
const wrapArb = fc.record({
  quote: fc.constantFrom('', '"', "'", '`'),
  pad: fc.constantFrom('', ' ', '\n', '  \t'),
  breaks: fc.uniqueArray(fc.nat(), { maxLength: 3 }),
  brk: fc.constantFrom('\n', '\r\n', ' ', '\n    '),
});

function wrap(text: string, w: { quote: string; pad: string; breaks: number[]; brk: string }): string {
  let s = text;
  for (const b of [...w.breaks].sort((x, y) => y - x)) {
    const at = 1 + (b % (s.length - 1));
    s = s.slice(0, at) + w.brk + s.slice(at);
  }
  return `${w.pad}${w.quote}${s}${w.quote}${w.pad}`;
}

/** One text edit: replace, insert, delete or swap characters. */
const editArb = fc.oneof(
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    ch: fc.string({ minLength: 1, maxLength: 1 }),
  }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), ch: fc.constantFrom(...B64URL.split('')) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    ch: fc.constantFrom(...B64URL.split(''), '=', '.', '+'),
  }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Edit = typeof editArb extends fc.Arbitrary<infer E> ? E : never;

function applyEdit(s: string, e: Edit): string {
  const at = e.at % (s.length + 1);
  switch (e.kind) {
    case 'set':
      return s.slice(0, at) + e.ch + s.slice(at + 1);
    case 'insert':
      return s.slice(0, at) + e.ch + s.slice(at);
    case 'delete':
      return s.slice(0, at) + s.slice(at + e.n);
    case 'swap':
      return at + 1 < s.length ? s.slice(0, at) + s[at + 1] + s[at] + s.slice(at + 2) : s;
    case 'truncate':
      return s.slice(0, at);
  }
}

/** A token text from arbitrary payload bytes with a correct checksum: reaches the field checks. */
function sealed(payload: Uint8Array): string {
  const sum = createHash('sha256').update(payload).digest().subarray(0, 4);
  return TOKEN_PREFIX + Buffer.concat([payload, sum]).toString('base64url');
}

// ---------------------------------------------------------------------------
// Properties

test(
  'fuzz join token: valid tokens round-trip, also quoted, padded and wrapped',
  { timeout: testTimeout(300) },
  () => {
    fc.assert(
      fc.property(tokenArb, wrapArb, (t, w) => {
        const text = encodeJoinToken(t);
        assert.deepEqual(decodeJoinToken(text), t);
        assert.deepEqual(decodeOrTokenError(wrap(text, w)), t);
        assert.equal(encodeJoinToken(decodeJoinToken(text)), text, 'one spelling per token');
      }),
      fuzzParams(300),
    );
  },
);

test(
  'fuzz join token: every single-character change of a valid token is caught',
  { timeout: testTimeout(2000) },
  () => {
    // Each case tries every position with one replacement character, so each case
    // decodes ~130 texts; the exhaustive test below tries all 64 characters at each.
    fc.assert(
      fc.property(
        tokenArb,
        fc.array(fc.constantFrom(...B64URL.split('')), { minLength: 1, maxLength: 4 }),
        (t, chars) => {
          const text = encodeJoinToken(t);
          for (let i = 0; i < text.length; i++) {
            for (const c of chars) {
              if (c === text[i]) continue;
              const changed = text.slice(0, i) + c + text.slice(i + 1);
              assert.equal(decodeOrTokenError(changed, t.secret), undefined, `change at ${i} to ${c}`);
            }
          }
        },
      ),
      // LINKMUX_FUZZ_RUNS=N runs N/50 cases here: each is ~500 decodes.
      fuzzParams(40, 0.02),
    );
  },
);

test(
  'fuzz join token: all 64 characters at every position of a few tokens are caught',
  { timeout: testTimeout(300) },
  () => {
    // 3 tokens by default (about 25,000 decodes); LINKMUX_FUZZ_RUNS=N tries N/1000.
    const tokens = fc.sample(tokenArb, {
      numRuns: Math.max(3, Math.round(fuzzRuns(300) / 1000)),
      seed: FUZZ_SEED,
    });
    for (const t of tokens) {
      const text = encodeJoinToken(t);
      for (let i = 0; i < text.length; i++) {
        for (const c of B64URL) {
          if (c === text[i]) continue;
          assert.equal(decodeOrTokenError(text.slice(0, i) + c + text.slice(i + 1), t.secret), undefined);
        }
      }
    }
  },
);

test(
  'fuzz join token: mutated tokens give LINKMUX_ERR_TOKEN or the identical token',
  { timeout: testTimeout(500) },
  () => {
    fc.assert(
      fc.property(tokenArb, fc.array(editArb, { minLength: 1, maxLength: 3 }), (t, edits) => {
        const text = encodeJoinToken(t);
        const mutated = edits.reduce(applyEdit, text);
        const got = decodeOrTokenError(mutated, t.secret);
        if (got !== undefined) {
          assert.deepEqual(got, t, 'a mutation that decodes gives the same token');
          assert.equal(mutated.replace(/\s+/g, ''), text, 'only whitespace changes are forgiven');
        }
      }),
      fuzzParams(500),
    );
  },
);

test('fuzz join token: random strings give only LINKMUX_ERR_TOKEN', { timeout: testTimeout(500) }, () => {
  const bodyChar = fc.constantFrom(...B64URL.split(''), ' ', '\n', '=', '"', 'é', '\0');
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ unit: bodyChar, maxLength: 200 }).map((s) => TOKEN_PREFIX + s),
        fc
          .tuple(fc.constantFrom('lmx0_', 'lmx2_', 'LMX1_', 'lmx12_', 'lmx1-', 'lmx_'), fc.base64String())
          .map(([p, b]) => p + b),
      ),
      (text) => {
        const got = decodeOrTokenError(text);
        // A random body with a valid 32-bit checksum and valid fields is out of reach in practice.
        if (got !== undefined) assert.equal(encodeJoinToken(got), text.replace(/\s+/g, ''));
      },
    ),
    fuzzParams(500),
  );
});

test(
  'fuzz join token: random payloads with a correct checksum are valid tokens or LINKMUX_ERR_TOKEN',
  { timeout: testTimeout(500) },
  () => {
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      // A valid token's payload, edited: the checksum is recomputed, so the field checks must catch it.
      fc
        .tuple(tokenArb, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 3 }))
        .map(([t, at, b, cutBy]) => {
          const bytes = Buffer.from(encodeJoinToken(t).slice(TOKEN_PREFIX.length), 'base64url').subarray(
            0,
            -4,
          );
          const p = Buffer.from(bytes.subarray(0, bytes.length - cutBy));
          if (p.length > 0) p[at % p.length] = b;
          return p;
        }),
    );
    fc.assert(
      fc.property(payload, (p) => {
        const secret = p.length >= 64 ? Buffer.from(p.subarray(32, 64)).toString('base64url') : undefined;
        const text = sealed(p);
        const got = decodeOrTokenError(text, secret);
        if (got !== undefined) assert.equal(encodeJoinToken(got), text, 'what decodes re-encodes to itself');
      }),
      fuzzParams(500),
    );
  },
);
