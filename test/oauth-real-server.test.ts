/**
 * Issue 22: standard OAuth 2.0 as first-class constructs, proven against a real authorization server
 * (oidc-provider: client-credentials grant, JWT access tokens with a 2 s lifetime) and a resource API that
 * verifies the tokens with jose — all on 127.0.0.1, over real HTTP. The spec uses `client_auth`,
 * `token_type`, a token endpoint from the record (`url: '{$config.token_endpoint}'`), `host:port`
 * entries in `allowed_hosts` and `$challenge` in the send stage's error rules.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, Engine, type Outcome } from '../engine/index.js';
import type { OutcomeDetail } from '../engine/run/outcome.js';
import { formUrlEncode } from '../engine/policy/client-auth.js';
import { event, FAST_RETRY } from './helpers/fixtures.js';
import { startOAuthWorld, type OAuthWorld } from './helpers/oauth-server.js';

/** Space, colon, plus, slash and percent: each one encoded differently by form-urlencoding and encodeURIComponent. */
const SECRET = 's3cr et:+/%x!*(y)';
const BASIC = { client_id: 'events-client', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_basic' } as const;
const POST = { client_id: 'events client:post', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post' } as const;

function specText(w: OAuthWorld, opts: { method?: 'basic' | 'post'; tokenType?: string } = {}): string {
  return `
spec_version: 1
vendor: oauth_events
title: OAuth events (test)
version: 0.1.0
config:
  type: object
  required: [token_endpoint, client_id, client_secret]
  properties:
    token_endpoint: { type: string }
    client_id: { type: string }
    client_secret: { type: string, secret: true }
allowed_hosts:
  - "127.0.0.1:${w.authPort}"
  - "127.0.0.1:${w.apiPort}"
auth:
  - name: token
    request:
      method: POST
      url: '{$config.token_endpoint}'
      encoding: form
      body:
        grant_type: '"client_credentials"'
    client_auth:
      method: ${opts.method ?? 'basic'}
      id: $config.client_id
      secret: $config.client_secret
    token_type: ${opts.tokenType ?? 'Bearer'}
    result:
      access_token: access_token
    expires_in: expires_in
    cache_key: [token_endpoint, client_id]
    vendor_error:
      code: error
      message: error_description
    errors:
      - when: { status: 401, code: invalid_client }
        action: fail
        hint: The authorization server does not know this client_id and client_secret.
send:
  request:
    method: POST
    url: ${w.api}/v1/events
    headers:
      Authorization: Bearer {$auth.token.access_token}
    body:
      id: event_id
      name: event
  success:
    status: [202]
    id: id
  vendor_error:
    code: $challenge.error
    message: $challenge.error_description
  errors:
    - when: { status: 401, code: invalid_token }
      action: reauth
      hint: The API refused the token even after a new one.
`;
}

let world: OAuthWorld | undefined;
let engine: Engine | undefined;
afterEach(async () => {
  engine?.close();
  await world?.close();
  engine = world = undefined;
});

async function start(opts: { method?: 'basic' | 'post'; tokenType?: string; ttl?: number } = {}) {
  world = await startOAuthWorld({ clients: [BASIC, POST], accessTokenTtl: opts.ttl ?? 2 });
  const details = new Map<string, OutcomeDetail>();
  engine = await Engine.load({
    specTexts: [{ file: 'test/oauth-events.yaml', text: specText(world, opts) }],
    retry: FAST_RETRY,
    onOutcome: (o: Outcome, d: OutcomeDetail) => details.set(String(o.event_id), d),
  });
  const client = opts.method === 'post' ? POST : BASIC;
  const record = (config: Record<string, unknown> = {}) => ({
    source_id: 'src_1',
    vendor: 'oauth_events',
    name: 'oauth events',
    enabled: true,
    config: { token_endpoint: world!.tokenEndpoint, client_id: client.client_id, client_secret: client.client_secret, ...config },
  });
  return { w: world, engine, details, record };
}

const delivered = (o: Outcome) => expect(o).toMatchObject({ status: 'delivered', http_status: 202, attempts: 1 });

describe('client authentication (RFC 6749 §2.3.1) against oidc-provider', () => {
  it('basic: the id and secret are form-urlencoded, then base64; one token for every delivery; preview shows Basic [redacted]', async () => {
    const { w, engine, record } = await start({ method: 'basic' });
    const integration = engine.createIntegration(record());
    const outcomes = await Promise.all([event(), event(), event()].map((e) => integration.deliver(e)));
    for (const o of outcomes) delivered(o);
    expect(w.tokenRequests.map((r) => r.status)).toEqual([200]);
    const header = w.tokenRequests[0]!.authorization!;
    expect(header).toBe(`Basic ${Buffer.from('events-client:s3cr+et%3A%2B%2F%25x%21*%28y%29').toString('base64')}`);
    expect(w.tokenRequests[0]!.authorization).not.toBe(`Basic ${Buffer.from(`events-client:${encodeURIComponent(SECRET)}`).toString('base64')}`);

    const preview = await integration.preview(event());
    expect(preview[0]).toMatchObject({ stage: 'auth.token', url: w.tokenEndpoint, headers: { Authorization: 'Basic [redacted]' }, body: 'grant_type=client_credentials' });
    expect(JSON.stringify(preview)).not.toContain(header.slice(6, 20));
  });

  it('post: client_id and client_secret are form fields of the token request; the secret never shows in a preview', async () => {
    const { w, engine, record } = await start({ method: 'post' });
    const integration = engine.createIntegration(record());
    delivered(await integration.deliver(event()));
    expect(w.tokenRequests).toHaveLength(1);
    expect(w.tokenRequests[0]!.authorization).toBeUndefined();
    const preview = await integration.preview(event());
    expect(preview[0]!.body).toBe(`grant_type=client_credentials&client_id=${formUrlEncode(POST.client_id)}&client_secret=%5Bredacted%5D`);
    expect(preview[0]!.headers.Authorization).toBeUndefined();
  });
});

describe('token lifetime and re-authentication', () => {
  it('a 2 s token expiring mid-run is refreshed before it expires: no 401 from the API, every event delivered in one attempt', async () => {
    const { w, engine, record } = await start();
    const integration = engine.createIntegration(record());
    const outcomes: Outcome[] = [];
    for (let i = 0; i < 10; i++) {
      outcomes.push(await integration.deliver(event()));
      await sleep(300);
    }
    for (const o of outcomes) delivered(o);
    expect(w.apiRequests.filter((r) => r.status === 401)).toEqual([]);
    // 3 s of deliveries with a token refreshed a second before its 2 s lifetime ends.
    expect(w.tokenRequests.length).toBeGreaterThanOrEqual(2);
    expect(new Set(w.apiRequests.map((r) => r.token)).size).toBe(w.tokenRequests.length);
  });

  it('signing-key rotation: the API answers 401 with error="invalid_token" in WWW-Authenticate ($challenge), and one re-auth recovers', async () => {
    const { w, engine, record, details } = await start({ ttl: 300 });
    const integration = engine.createIntegration(record());
    delivered(await integration.deliver(event()));
    await w.rotateKeys();
    const e = event();
    const o = await integration.deliver(e);
    expect(o).toMatchObject({ status: 'delivered', http_status: 202, attempts: 2 });
    expect(w.apiRequests.map((r) => r.status)).toEqual([202, 401, 202]);
    expect(w.apiRequests[1]!.error).toBe('invalid_token');
    expect(w.tokenRequests.map((r) => r.status)).toEqual([200, 200]);
    expect(details.get(e.event_id)!.attempts.map((a) => `${a.stage}:${a.status}`)).toEqual(['auth:200', 'send:401', 'send:202']);
  });
});

describe('failures', () => {
  it('invalid_client is permanent, one token request for a burst, and the secret is never printed', async () => {
    const { w, engine, record, details } = await start();
    const wrong = 'wr0ng secret:+/%';
    const integration = engine.createIntegration(record({ client_secret: wrong }));
    const events = [event(), event(), event()];
    const outcomes = await Promise.all(events.map((e) => integration.deliver(e)));
    for (const o of outcomes) {
      expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', retryable: false, http_status: 401, vendor_code: 'invalid_client', attempts: 0 });
      expect(o.hint).toContain('does not know this client_id');
    }
    expect(w.tokenRequests.map((r) => r.status)).toEqual([401]);
    expect(w.apiRequests).toEqual([]);
    const printed = JSON.stringify({ outcomes, details: [...details.values()] });
    for (const form of [wrong, encodeURIComponent(wrong), formUrlEncode(wrong), w.tokenRequests[0]!.authorization!.slice(6)]) expect(printed).not.toContain(form);
    // The one token request is in the detail of every event that waited for it (stage auth)...
    for (const e of events) expect(details.get(e.event_id)!.attempts).toEqual([expect.objectContaining({ stage: 'auth', auth_stage: 'token', status: 401 })]);
    // ...and not in that of a later event answered from the remembered failure, which made none.
    const later = event();
    expect((await integration.deliver(later)).reason).toBe('auth_failed');
    expect(w.tokenRequests).toHaveLength(1);
    expect(details.get(later.event_id)!.attempts).toEqual([]);
  });

  it('a token endpoint answering 503 twice recovers, and the outcome detail shows all three auth attempts', async () => {
    const { w, engine, record, details } = await start({ ttl: 300 });
    w.failNextTokenRequests(2);
    const e = event();
    const o = await engine.createIntegration(record()).deliver(e);
    delivered(o);
    expect(w.tokenRequests.map((r) => r.status)).toEqual([503, 503, 200]);
    expect(details.get(e.event_id)!.attempts.map((a) => `${a.stage}:${a.status}`)).toEqual(['auth:503', 'auth:503', 'auth:200', 'send:202']);
  });

  it('a token of another token_type than the spec expects fails permanently, and nothing is sent', async () => {
    const { w, engine, record } = await start({ tokenType: 'DPoP' });
    const integration = engine.createIntegration(record());
    const o = await integration.deliver(event());
    expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', retryable: false, http_status: 200 });
    expect(o.message).toContain("token_type 'Bearer', not 'DPoP'");
    expect(w.apiRequests).toEqual([]);
    // Remembered as permanent: the next event costs no token request.
    expect((await integration.deliver(event())).reason).toBe('auth_failed');
    expect(w.tokenRequests).toHaveLength(1);
  });

  it('token_type is compared case-insensitively: `bearer` accepts the server\'s Bearer', async () => {
    const { engine, record } = await start({ tokenType: 'bearer' });
    delivered(await engine.createIntegration(record()).deliver(event()));
  });

  it('a token endpoint from the record on a port allowed_hosts does not list is refused before anything is sent', async () => {
    const { w, engine, record } = await start();
    const elsewhere = `http://127.0.0.1:${w.apiPort === 1 ? 2 : 1}/token`;
    const o = await engine.createIntegration(record({ token_endpoint: elsewhere })).deliver(event());
    expect(o).toMatchObject({ status: 'failed', reason: 'host_not_allowed' });
    expect(o.message).toContain(`host '127.0.0.1:${w.apiPort === 1 ? 2 : 1}'`);
    expect(w.tokenRequests).toEqual([]);
    await expect(engine.createIntegration(record({ token_endpoint: elsewhere })).preview(event())).rejects.toMatchObject({ code: 'host_not_allowed' });
  });
});

describe('examples/specs/acme_oauth_events.yaml against the real server', () => {
  /** One loopback front for `--endpoint`: requests go to the authorization server or the API by their original host. */
  async function front(w: OAuthWorld): Promise<{ url: string; server: Server }> {
    const server = createServer((req, res) => {
      const port = String(req.headers['x-forwarded-host']).endsWith('.login.acme.example') ? w.authPort : w.apiPort;
      const upstream = request({ host: '127.0.0.1', port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
  }

  it('delivers with a token from oidc-provider (client_secret_basic, Bearer), and re-authenticates once after a key rotation', async () => {
    world = await startOAuthWorld({ clients: [{ ...BASIC, client_id: 'signal-events' }], accessTokenTtl: 300 });
    const { url, server } = await front(world);
    try {
      engine = await Engine.load({ specs: join(BUNDLED_SPECS_DIR, '..', 'examples', 'specs', 'acme_oauth_events.yaml'), endpoint: url, retry: FAST_RETRY });
      const integration = engine.createIntegration({
        source_id: 'src_1', vendor: 'acme_oauth_events', name: 'acme', enabled: true,
        // The resource server of this test grants its own scope whatever is asked (oidc-provider resource indicators).
        config: { token_endpoint: 'https://mytenant.login.acme.example/token', client_id: 'signal-events', client_secret: SECRET, scope: 'events:write' },
      });
      delivered(await integration.deliver(event()));
      await world.rotateKeys();
      expect(await integration.deliver(event())).toMatchObject({ status: 'delivered', attempts: 2 });
      expect(world.tokenRequests.map((r) => r.status)).toEqual([200, 200]);
      expect(world.apiRequests.map((r) => r.status)).toEqual([202, 401, 202]);
      expect(JSON.parse(world.apiRequests[0]!.body)).toMatchObject({ name: 'Lead Submitted', user_id: 'user-123' });
    } finally {
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    }
  });
});

describe('discovery (OpenID Connect Discovery / RFC 8414) as a first auth stage', () => {
  it('the token endpoint comes from the discovery document (a public output), checked against allowed_hosts like any URL', async () => {
    world = await startOAuthWorld({ clients: [BASIC], accessTokenTtl: 300 });
    const w = world;
    const text = specText(w)
      .replace(
        'auth:\n  - name: token\n    request:\n      method: POST\n      url: \'{$config.token_endpoint}\'',
        `auth:
  - name: discovery
    request:
      method: GET
      url: '{$config.discovery_url}'
    result:
      token_endpoint: token_endpoint
    public: [token_endpoint]
    default_expires_in: 3600
    cache_key: [discovery_url]
  - name: token
    request:
      method: POST
      url: '{$auth.discovery.token_endpoint}'`,
      )
      .replace('required: [token_endpoint, client_id, client_secret]', 'required: [discovery_url, client_id, client_secret]')
      .replace('token_endpoint: { type: string }', 'discovery_url: { type: string }')
      .replace('cache_key: [token_endpoint, client_id]', 'cache_key: [discovery_url, client_id]');
    engine = await Engine.load({ specTexts: [{ file: 'test/oauth-discovery.yaml', text }], retry: FAST_RETRY });
    const record = { source_id: 's', vendor: 'oauth_events', name: 'discovery', enabled: true, config: { discovery_url: `${w.issuer}/.well-known/openid-configuration`, client_id: BASIC.client_id, client_secret: SECRET } };
    const integration = engine.createIntegration(record);
    const preview = await integration.preview(event());
    expect(preview.map((r) => `${r.stage} ${r.method} ${r.url}`)).toEqual([
      `auth.discovery GET ${w.issuer}/.well-known/openid-configuration`,
      'auth.token POST [discovery.token_endpoint]',
      `send POST ${w.api}/v1/events`,
    ]);
    delivered(await integration.deliver(event()));
    delivered(await integration.deliver(event()));
    expect(w.tokenRequests.map((r) => r.status)).toEqual([200]);
    expect(w.apiRequests.map((r) => r.status)).toEqual([202, 202]);
  });
});
