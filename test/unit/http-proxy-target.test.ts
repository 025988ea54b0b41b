// The HTTP proxy's pure helpers: CONNECT authority and absolute-URI parsing
// (IPv6 brackets, port range, malformed input), hop-by-hop header filtering on
// rawHeaders, Basic proxy credentials, and the failure → status mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkmuxError } from '../../src/util/errors.js';
import {
  formatAuthority,
  parseAbsoluteTarget,
  parseConnectTarget,
  parsePort,
} from '../../src/proxy/http/http-target.js';
import {
  connectionTokens,
  forwardRequestHeaders,
  forwardResponseHeaders,
  stripHopByHop,
} from '../../src/proxy/http/hop-by-hop.js';
import { createBasicAuthCheck, parseBasicAuthorization } from '../../src/proxy/http/proxy-auth.js';
import { dialFailure, rawResponse, upstreamFailure } from '../../src/proxy/http/error-reply.js';

test('CONNECT targets: host names, IPv4 and bracketed IPv6 with a port', () => {
  const cases: [string, { host: string; port: number }][] = [
    ['example.org:443', { host: 'example.org', port: 443 }],
    ['Example.ORG:443', { host: 'example.org', port: 443 }],
    ['example.org.:443', { host: 'example.org.', port: 443 }],
    ['under_score.example:8080', { host: 'under_score.example', port: 8080 }],
    ['127.0.0.1:1', { host: '127.0.0.1', port: 1 }],
    ['[::1]:443', { host: '::1', port: 443 }],
    ['[2001:DB8::1]:65535', { host: '2001:db8::1', port: 65535 }],
    ['localhost:22', { host: 'localhost', port: 22 }],
  ];
  for (const [input, expected] of cases) assert.deepEqual(parseConnectTarget(input), expected, input);
});

test('CONNECT targets: malformed ones are undefined, never thrown', () => {
  const bad = [
    '',
    'example.org',
    'example.org:',
    ':443',
    'example.org:0',
    'example.org:65536',
    'example.org:99999',
    'example.org:+443',
    'example.org:44a',
    'example.org:-1',
    'example.org:0443443',
    '::1:443',
    '[::1]',
    '[::1]443',
    '[::1:443',
    '[not-ipv6]:443',
    '[fe80::1%eth0]:443',
    'exa mple.org:443',
    'exa$mple.org:443',
    '-example.org:443',
    'example..org:443',
    '999.1.1.1:80',
    '1.2.3:80',
    'user@example.org:443',
    `${'a'.repeat(254)}:443`,
    'http://example.org:443',
  ];
  for (const input of bad) assert.equal(parseConnectTarget(input), undefined, input);
});

test('regression: a host with a non-ASCII letter that lower-cases to ASCII (U+212A Kelvin sign) is refused', () => {
  // Found by fuzz-http-target: "\u212Alocalhost" was accepted as "klocalhost".
  assert.equal(parseConnectTarget('\u212Alocalhost:443'), undefined);
  assert.equal(parseAbsoluteTarget('http://\u212Alocalhost:1/'), undefined);
  assert.equal(parseConnectTarget('\u0130nternal.lan:443'), undefined);
  assert.deepEqual(parseConnectTarget('KLocalHost:443'), { host: 'klocalhost', port: 443 });
});

test('ports: 1..65535 in decimal only', () => {
  assert.equal(parsePort('1'), 1);
  assert.equal(parsePort('65535'), 65535);
  assert.equal(parsePort('080'), 80);
  for (const p of ['0', '65536', '', ' 80', '8 0', '1e3', '0x50', '123456']) {
    assert.equal(parsePort(p), undefined, p);
  }
});

test('absolute URIs: destination, origin-form path and Host header', () => {
  assert.deepEqual(parseAbsoluteTarget('http://example.org/a/b?c=d'), {
    dst: { host: 'example.org', port: 80 },
    path: '/a/b?c=d',
    hostHeader: 'example.org',
  });
  assert.deepEqual(parseAbsoluteTarget('HTTP://Example.org:8080'), {
    dst: { host: 'example.org', port: 8080 },
    path: '/',
    hostHeader: 'example.org:8080',
  });
  assert.deepEqual(parseAbsoluteTarget('http://[::1]:8080/x'), {
    dst: { host: '::1', port: 8080 },
    path: '/x',
    hostHeader: '[::1]:8080',
  });
  assert.deepEqual(parseAbsoluteTarget('http://[::1]/x'), {
    dst: { host: '::1', port: 80 },
    path: '/x',
    hostHeader: '[::1]',
  });
  // The path is passed on byte for byte: no dot-segment or percent rewriting.
  assert.equal(parseAbsoluteTarget('http://h/a/../b/%7e?x=%20#frag')?.path, '/a/../b/%7e?x=%20');
  assert.equal(parseAbsoluteTarget('http://h?q=1')?.path, '/?q=1');
  assert.equal(parseAbsoluteTarget('http://h:80/')?.hostHeader, 'h');
  // Credentials in the URI are dropped, not forwarded.
  const withUser = parseAbsoluteTarget('http://user:secret@example.org:81/p');
  assert.deepEqual(withUser, {
    dst: { host: 'example.org', port: 81 },
    path: '/p',
    hostHeader: 'example.org:81',
  });
});

test('absolute URIs: malformed or non-http ones are undefined', () => {
  const bad = [
    '/relative',
    '*',
    'https://example.org/',
    'ftp://example.org/',
    'http:/example.org/',
    'http://',
    'http://:80/',
    'http://example.org:0/',
    'http://example.org:70000/',
    'http://::1/',
    'http://[::1/',
    'http://exa mple.org/',
    'http://h/a b',
  ];
  for (const input of bad) assert.equal(parseAbsoluteTarget(input), undefined, input);
});

test('formatAuthority brackets IPv6 and drops a default port', () => {
  assert.equal(formatAuthority({ host: '::1', port: 443 }), '[::1]:443');
  assert.equal(formatAuthority({ host: 'h', port: 80 }, 80), 'h');
  assert.equal(formatAuthority({ host: '10.0.0.1', port: 8080 }, 80), '10.0.0.1:8080');
});

test('hop-by-hop: fixed list, names listed by Connection, order and repeats kept', () => {
  const raw = [
    'Host', 'a',
    'Connection', 'keep-alive, X-Secret',
    'connection', 'Upgrade',
    'X-Secret', '1',
    'Set-Cookie', 'a=1',
    'Keep-Alive', 'timeout=5',
    'Proxy-Connection', 'keep-alive',
    'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
    'Proxy-Authenticate', 'Basic',
    'TE', 'trailers',
    'Trailer', 'X-T',
    'Transfer-Encoding', 'chunked',
    'Upgrade', 'websocket',
    'Set-Cookie', 'b=2',
    'X-Keep', 'yes',
  ]; // prettier-ignore
  assert.deepEqual([...connectionTokens(raw)], ['keep-alive', 'x-secret', 'upgrade']);
  assert.deepEqual(stripHopByHop(raw), [
    'Host',
    'a',
    'Set-Cookie',
    'a=1',
    'Set-Cookie',
    'b=2',
    'X-Keep',
    'yes',
  ]);
  assert.deepEqual(stripHopByHop(raw, ['host']), ['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'X-Keep', 'yes']);
});

test('hop-by-hop: a Connection header cannot strip Content-Length (framing)', () => {
  const raw = ['Connection', 'Content-Length, x-a', 'Content-Length', '5', 'X-A', '1'];
  assert.deepEqual(stripHopByHop(raw), ['Content-Length', '5']);
});

test('forwarded request headers: Host from the URI first, Via last, chunked restated', () => {
  const raw = ['host', 'evil.example', 'Accept', '*/*', 'Via', '1.0 other', 'Proxy-Connection', 'keep-alive'];
  assert.deepEqual(forwardRequestHeaders(raw, 'example.org:8080', '1.1'), [
    'Host', 'example.org:8080',
    'Accept', '*/*',
    'Via', '1.0 other',
    'Via', '1.1 linkmux',
  ]); // prettier-ignore
  // A chunked body keeps explicit chunked framing (else a GET's body would go unframed).
  const chunked = ['Host', 'h', 'Transfer-Encoding', 'chunked', 'Content-Length', '10'];
  assert.deepEqual(forwardRequestHeaders(chunked, 'h', '1.1'), [
    'Host', 'h',
    'Via', '1.1 linkmux',
    'Transfer-Encoding', 'chunked',
  ]); // prettier-ignore
});

test('forwarded response headers: hop-by-hop removed, Via appended with the received version', () => {
  const raw = ['Content-Length', '3', 'Connection', 'close', 'Keep-Alive', 'timeout=5', 'ETag', '"x"'];
  assert.deepEqual(forwardResponseHeaders(raw, '1.0'), [
    'Content-Length', '3',
    'ETag', '"x"',
    'Via', '1.0 linkmux',
  ]); // prettier-ignore
});

test('Basic proxy credentials: parsed, compared exactly, other schemes refused', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  assert.deepEqual(parseBasicAuthorization(`Basic ${b64('u:p:with:colons')}`), {
    username: 'u',
    password: 'p:with:colons',
  });
  assert.deepEqual(parseBasicAuthorization(`basic   ${b64('ü:ß')} `), { username: 'ü', password: 'ß' });
  assert.equal(parseBasicAuthorization(undefined), undefined);
  assert.equal(parseBasicAuthorization('Bearer abc'), undefined);
  assert.equal(parseBasicAuthorization(`Basic ${b64('nocolon')}`), undefined);
  assert.equal(parseBasicAuthorization('Basic !!!'), undefined);

  const check = createBasicAuthCheck({ username: 'alice', password: 's3cret' });
  assert.equal(check(`Basic ${b64('alice:s3cret')}`), true);
  assert.equal(check(`Basic ${b64('alice:s3cre')}`), false);
  assert.equal(check(`Basic ${b64('alice:s3cret ')}`), false);
  assert.equal(check(`Basic ${b64('Alice:s3cret')}`), false);
  assert.equal(check(`Basic ${b64(':')}`), false);
  assert.equal(check(undefined), false);
  assert.equal(check(''), false);
  // Empty credentials are legal when configured so, and must still match exactly.
  const empty = createBasicAuthCheck({ username: '', password: '' });
  assert.equal(empty(`Basic ${b64(':')}`), true);
  assert.equal(empty(undefined), false);
});

test('failures map to 502/504/403 with a message naming the destination', () => {
  const refused = new LinkmuxError('LINKMUX_ERR_CONNECT', 'connect failed', {
    cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }),
  });
  assert.deepEqual(dialFailure(refused, 'h:1'), {
    status: 502,
    message: 'linkmux: cannot connect to h:1 (ECONNREFUSED)',
  });
  assert.equal(dialFailure(new LinkmuxError('LINKMUX_ERR_TIMEOUT', 't'), 'h:1').status, 504);
  assert.equal(dialFailure(new LinkmuxError('LINKMUX_ERR_DNS', 'd'), 'h:1').status, 502);
  assert.match(dialFailure(new LinkmuxError('LINKMUX_ERR_DNS', 'd'), 'h:1').message, /did not resolve/);
  assert.equal(dialFailure(new LinkmuxError('LINKMUX_ERR_NO_LINKS', 'n'), 'h:1').status, 502);
  assert.equal(dialFailure(Object.assign(new Error('x'), { code: 'LINKMUX_ERR_DENIED' }), 'h:1').status, 403);
  assert.equal(dialFailure(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), 'h:1').status, 504);
  assert.equal(dialFailure('weird', 'h:1').status, 502);

  assert.equal(upstreamFailure(Object.assign(new Error('idle'), { code: 'ETIMEDOUT' }), 'h:1').status, 504);
  assert.equal(
    upstreamFailure(Object.assign(new Error('bad'), { code: 'HPE_INVALID_CONSTANT' }), 'h:1').status,
    502,
  );
  assert.match(
    upstreamFailure(Object.assign(new Error('hang up'), { code: 'ECONNRESET' }), 'h:1').message,
    /closed the connection.*ECONNRESET/,
  );
  assert.equal(upstreamFailure(new LinkmuxError('LINKMUX_ERR_TIMEOUT', 't'), 'h:1').status, 504);
});

test('raw replies are complete responses that close the connection', () => {
  const text = rawResponse(407, 'linkmux: proxy authentication required', {
    'Proxy-Authenticate': 'Basic realm="linkmux"',
  });
  assert.equal(
    text,
    'HTTP/1.1 407 Proxy Authentication Required\r\n' +
      'Proxy-Authenticate: Basic realm="linkmux"\r\n' +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      'Content-Length: 39\r\n' +
      'Connection: close\r\n\r\n' +
      'linkmux: proxy authentication required\n',
  );
});
