/**
 * Issue 22, alone: the pure functions behind the OAuth constructs (client-auth encoding, token_type,
 * WWW-Authenticate challenges, ports in allowed_hosts) and the load-time checks of each construct,
 * reported as file:line:col.
 */
import { describe, expect, it } from 'vitest';
import { Engine, checkSpecText, type Outcome } from '../engine/index.js';
import type { OutcomeDetail } from '../engine/run/outcome.js';
import { event, FAST_RETRY } from './helpers/fixtures.js';
import { startStubVendor } from './helpers/stub-vendor.js';
import { basicCredentials, formUrlEncode, tokenTypeMatches } from '../engine/policy/client-auth.js';
import { challengeValue, parseChallenges } from '../engine/policy/challenge.js';
import { hostAllowed } from '../engine/policy/hosts.js';
import { renderTemplate, parseTemplate } from '../engine/compile/template.js';

describe('client authentication encoding (RFC 6749 §2.3.1, Appendix B)', () => {
  it.each([
    ['a b', 'a+b'],
    ['a:b', 'a%3Ab'],
    ['a+b', 'a%2Bb'],
    ['a/b', 'a%2Fb'],
    ['100%', '100%25'],
    ["!'()~", '%21%27%28%29%7E'],
    ['*-._', '*-._'],
    ['é', '%C3%A9'],
  ])('form-urlencodes %j as %j', (raw, encoded) => {
    expect(formUrlEncode(raw)).toBe(encoded);
  });

  it('basic: base64 of the encoded id, a colon, the encoded secret (a colon in the id cannot split it)', () => {
    const header = basicCredentials('id:1', 's e+c/r%t');
    expect(header).toBe(`Basic ${Buffer.from('id%3A1:s+e%2Bc%2Fr%25t').toString('base64')}`);
    const decoded = Buffer.from(header.slice(6), 'base64').toString();
    expect(decoded.split(':')).toHaveLength(2);
  });

  it('token_type is compared case-insensitively; missing or another type does not match', () => {
    expect(tokenTypeMatches('Bearer', 'bearer')).toBe(true);
    expect(tokenTypeMatches('BEARER', 'Bearer')).toBe(true);
    expect(tokenTypeMatches('DPoP', 'Bearer')).toBe(false);
    expect(tokenTypeMatches(undefined, 'Bearer')).toBe(false);
    expect(tokenTypeMatches(7, 'Bearer')).toBe(false);
  });
});

describe('WWW-Authenticate challenges (RFC 9110 §11.6.1, RFC 6750 §3)', () => {
  it('reads a Bearer error challenge, quoted strings unescaped', () => {
    expect(challengeValue('Bearer realm="example", error="invalid_token", error_description="The \\"token\\" expired"')).toEqual({
      scheme: 'Bearer',
      realm: 'example',
      error: 'invalid_token',
      error_description: 'The "token" expired',
    });
  });

  it('reads several challenges, token values, token68 and lowercase parameter names', () => {
    expect(parseChallenges('Basic abc==, Bearer Error=insufficient_scope, scope="a b"')).toEqual([
      { scheme: 'Basic', params: { token68: 'abc==' } },
      { scheme: 'Bearer', params: { error: 'insufficient_scope', scope: 'a b' } },
    ]);
    expect(parseChallenges(['Newauth realm="apps", type=1', 'Bearer'])).toEqual([
      { scheme: 'Newauth', params: { realm: 'apps', type: '1' } },
      { scheme: 'Bearer', params: {} },
    ]);
  });

  it('gives nothing for no header, and stops at what it cannot parse', () => {
    expect(challengeValue(undefined)).toBeUndefined();
    expect(challengeValue('')).toBeUndefined();
    expect(parseChallenges('Bearer error="unterminated')).toEqual([{ scheme: 'Bearer', params: {} }]);
  });
});

describe('allowed_hosts entries with a port', () => {
  it.each<[string, number | undefined, number, string[], boolean]>([
    // A bare host: the scheme's default port only.
    ['api.example.com', undefined, 443, ['api.example.com'], true],
    ['api.example.com', 8443, 443, ['api.example.com'], false],
    ['api.example.com', 80, 80, ['api.example.com'], true],
    // host:port: that port only (the default one included when named).
    ['api.example.com', 8443, 443, ['api.example.com:8443'], true],
    ['api.example.com', undefined, 443, ['api.example.com:8443'], false],
    ['api.example.com', undefined, 443, ['api.example.com:443'], true],
    ['api.example.com', 9000, 443, ['api.example.com:8443'], false],
    ['127.0.0.1', 9443, 80, ['127.0.0.1:9443'], true],
    ['127.0.0.1', 9444, 80, ['127.0.0.1:9443'], false],
    // Wildcards keep their label rules, with a port.
    ['x.a.com', 8443, 443, ['*.a.com:8443'], true],
    ['y.x.a.com', 8443, 443, ['*.a.com:8443'], false],
    ['y.x.a.com', 8443, 443, ['**.a.com:8443'], true],
  ])('%s port %s (default %s) vs %j → %s', (host, port, defaultPort, patterns, expected) => {
    expect(hostAllowed(host, patterns, port, defaultPort)).toBe(expected);
  });
});

describe('allowed_hosts entries in the schema', () => {
  const hostsSpec = (hosts: string[]) => `spec_version: 1
vendor: example
title: Example
version: 1.0.0
config: {type: object, properties: {}}
allowed_hosts: [${hosts.map((h) => JSON.stringify(h)).join(', ')}]
send:
  request: {method: POST, url: "https://api.example.com/v1/events"}
`;
  it('accepts host:port, wildcards with a port and bare hosts', () => {
    expect(diagnostics(hostsSpec(['api.example.com', 'auth.example.com:8443', '*.example.com:9443', '127.0.0.1:65535']))).toEqual([]);
  });
  it('validate flags a literal URL whose port allowed_hosts does not allow (a bare host: the default port only)', () => {
    const text = (url: string) => hostsSpec(['api.example.com', 'auth.example.com:8443']).replace('https://api.example.com/v1/events', url);
    expect(diagnostics(text('https://api.example.com:8443/v1/events'))).toEqual([
      expect.stringMatching(/^8:32 host api.example.com:8443 is not in allowed_hosts \(api.example.com, auth.example.com:8443\).*\(at send.request.url\)$/),
    ]);
    expect(diagnostics(text('https://api.example.com:443/v1/events'))).toEqual([]);
    expect(diagnostics(text('https://auth.example.com:8443/v1/events'))).toEqual([]);
    expect(diagnostics(text('https://auth.example.com/v1/events'))).toHaveLength(1);
  });
  it.each(['api.example.com:', 'api.example.com:0', 'api.example.com:08', ':443', 'api.example.com:443:1', 'api.example.com:x'])('refuses %j', (h) => {
    expect(diagnostics(hostsSpec(['api.example.com', h]))).toEqual([expect.stringMatching(/^6:\d+ .*\(at allowed_hosts\[1\]\)$/)]);
  });
});

describe('a whole URL from one placeholder', () => {
  const render = (v: unknown) => renderTemplate(parseTemplate('{$config.token_endpoint}'), [v], 'url', 'check');
  it('takes an absolute http(s) URL with its path and query', () => {
    expect(render('https://login.example.com/oauth2/v1/token?x=1')).toBe('https://login.example.com/oauth2/v1/token?x=1');
    expect(render('http://127.0.0.1:9000/token')).toBe('http://127.0.0.1:9000/token');
  });
  it.each(['login.example.com/token', 'https://user:pw@login.example.com/token', 'https://login.example.com/token#x', 'ftp://login.example.com/t', 'javascript:alert(1)', 42])(
    'refuses %j',
    (v) => {
      expect(() => render(v)).toThrow(/whole|no value|must be a string/);
    },
  );
  it('an origin placeholder followed by a path still takes an origin only', () => {
    expect(() => renderTemplate(parseTemplate('{$config.base}/v1'), ['https://a.example.com/x'], 'url', 'check')).toThrow(/must be an origin/);
  });
});

const spec = (auth: string, extra = '') => `spec_version: 1
vendor: example
title: Example
version: 1.0.0
config:
  type: object
  properties:
    token_endpoint: {type: string}
    client_id: {type: string}
    client_secret: {type: string, secret: true}
    region: {type: string}
allowed_hosts: [login.example.com, "api.example.com:8443"${extra}]
auth:
${auth}
send:
  request: {method: POST, url: "https://api.example.com:8443/v1/events", headers: {Authorization: "Bearer {$auth.token.access_token}"}}
`;

const diagnostics = (text: string) => checkSpecText('/specs/example.yaml', text).diagnostics.map((d) => `${d.line}:${d.col} ${d.message} (at ${d.path})`);

describe('load-time checks of the OAuth constructs (file:line:col)', () => {
  it('a clean spec with every construct loads', () => {
    expect(
      diagnostics(
        spec(`  - name: token
    request: {method: POST, url: "{$config.token_endpoint}", encoding: form, body: {grant_type: '"client_credentials"'}}
    client_auth: {method: basic, id: $config.client_id, secret: $config.client_secret}
    token_type: Bearer
    result: {access_token: access_token}
    expires_in: expires_in
    cache_key: [token_endpoint, client_id]`),
      ),
    ).toEqual([]);
  });

  it('basic with an Authorization header of its own; post without a form body or writing the fields itself', () => {
    expect(
      diagnostics(
        spec(`  - name: token
    request: {method: POST, url: "https://login.example.com/token", headers: {Authorization: "Basic x"}}
    client_auth: {method: basic, id: $config.client_id, secret: $config.client_secret}
    result: {access_token: access_token}
    cache_key: [client_id]
  - name: other
    request: {method: POST, url: "https://login.example.com/token", body: {client_id: $config.client_id}}
    client_auth: {method: post, id: $config.client_id, secret: $config.client_secret}
    result: {access_token: access_token}
    cache_key: [client_id]`),
      ),
    ).toEqual([
      expect.stringMatching(/^15:94 client_auth: basic writes the Authorization header itself.*\(at auth\[0\]\.request\.headers\.Authorization\)$/),
      expect.stringMatching(/^21:27 client_auth: post puts client_id and client_secret in a form body.*\(at auth\[1\]\.client_auth\.method\)$/),
      expect.stringMatching(/^20:87 client_auth: post writes client_id itself.*\(at auth\[1\]\.request\.body\.client_id\)$/),
    ]);
  });

  it('a client secret read from a config field that is not secret; an unknown config field in client_auth', () => {
    expect(
      diagnostics(
        spec(`  - name: token
    request: {method: POST, url: "https://login.example.com/token"}
    client_auth: {method: basic, id: $config.client_idd, secret: $config.region}
    result: {access_token: access_token}
    cache_key: [client_id]`),
      ),
    ).toEqual([
      expect.stringMatching(/^16:46 \$config.client_idd is not a config field.*\(at auth\[0\]\.client_auth\.id\)$/),
      expect.stringMatching(/^16:66 client_auth.secret reads \$config.region, which is not declared secret: true.*\(at auth\[0\]\.client_auth\.secret\)$/),
    ]);
  });

  it('a URL whole from a secret config field; a port out of range; a schema error for method and token_type', () => {
    expect(
      diagnostics(
        spec(
          `  - name: token
    request: {method: POST, url: "{$config.client_secret}"}
    result: {access_token: access_token}
    cache_key: [client_id]`,
          ', "login.example.com:70000"',
        ),
      ),
    ).toEqual([expect.stringMatching(/^12:60 allowed_hosts entry 'login.example.com:70000' names port 70000; a port is 1 to 65535 \(at allowed_hosts\[2\]\)$/), expect.stringMatching(/^15:34 the URL comes from \$config.client_secret, a secret config field.*\(at auth\[0\]\.request\.url\)$/)]);
    expect(
      diagnostics(
        spec(`  - name: token
    request: {method: POST, url: "https://login.example.com/token"}
    client_auth: {method: digest, id: $config.client_id, secret: $config.client_secret}
    token_type: "Bearer token"
    result: {access_token: access_token}
    cache_key: [client_id]`),
      ),
    ).toEqual([
      expect.stringMatching(/^16:27 must be equal to one of the allowed values \(basic, post\) \(at auth\[0\]\.client_auth\.method\)$/),
      expect.stringMatching(/^17:17 .*\(at auth\[0\]\.token_type\)$/),
    ]);
  });
});

describe('auth attempts in a batch', () => {
  it('every event of the batch records the token requests the batch waited for (a 503, then the token), then the send', async () => {
    const stub = await startStubVendor();
    let tokenCalls = 0;
    stub.answer('/token', () => (++tokenCalls === 1 ? { status: 503, body: { error: 'temporarily_unavailable' } } : { status: 200, body: { access_token: 'tok-abcdef', token_type: 'bearer', expires_in: 300 } }));
    stub.answer('/v1/batch', { status: 200, body: { ok: true } });
    const details: OutcomeDetail[] = [];
    const engine = await Engine.load({
      specTexts: [
        {
          file: 'test/batch-oauth.yaml',
          text: `spec_version: 1
vendor: batch_oauth
title: Batch OAuth
version: 1.0.0
config: {type: object, properties: {client_id: {type: string}, client_secret: {type: string, secret: true}}}
allowed_hosts: [api.stub.example]
auth:
  - name: token
    request: {method: POST, url: "https://api.stub.example/token", encoding: form, body: {grant_type: '"client_credentials"'}}
    client_auth: {method: post, id: $config.client_id, secret: $config.client_secret}
    token_type: Bearer
    result: {access_token: access_token}
    expires_in: expires_in
    cache_key: [client_id]
send:
  request:
    method: POST
    url: https://api.stub.example/v1/batch
    headers: {Authorization: "Bearer {$auth.token.access_token}"}
    body: {id: event_id}
  batch: {max_items: 3, max_wait_ms: 50, body: $items}
`,
        },
      ],
      endpoint: stub.url,
      retry: FAST_RETRY,
      onOutcome: (_o: Outcome, d: OutcomeDetail) => details.push(d),
    });
    try {
      const integration = engine.createIntegration({ source_id: 's', vendor: 'batch_oauth', name: 'b', enabled: true, config: { client_id: 'c 1', client_secret: 'se cr+et' } });
      const outcomes = await integration.deliverAll([event(), event(), event()]);
      expect(outcomes.map((o) => [o.status, o.attempts])).toEqual([['delivered', 1], ['delivered', 1], ['delivered', 1]]);
      expect(details.map((d) => d.attempts.map((a) => `${a.stage}:${a.status}`))).toEqual(Array(3).fill(['auth:503', 'auth:200', 'send:200']));
      const tokenRequests = stub.requests.filter((r) => r.path === '/token');
      expect(tokenRequests.map((r) => r.body)).toEqual(Array(2).fill('grant_type=client_credentials&client_id=c+1&client_secret=se+cr%2Bet'));
    } finally {
      engine.close();
      await stub.close();
    }
  });
});
