/**
 * Issue 7 §§2–7: shapes other than Marketing Cloud, each YAML only, run end to end over real HTTP against a
 * local stub vendor — the example specs in examples/specs (Mixpanel import, Klaviyo bulk events) and an
 * illustrative fixture (chained tokens, an origin from an auth answer, header-borne errors and delays).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pinFiles, runPin } from '../cli/pins.js';
import { BUNDLED_SPECS_DIR, Engine, type Integration } from '../engine/index.js';
import { event } from './helpers/fixtures.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';

const EXAMPLES = join(BUNDLED_SPECS_DIR, '..', 'examples', 'specs');
const FIXTURE = join(BUNDLED_SPECS_DIR, '..', 'test', 'fixtures', 'chained-tokens-spec.yaml');

let stub: StubVendor;
let engine: Engine;
beforeAll(async () => {
  stub = await startStubVendor();
  engine = await Engine.load({ specs: [EXAMPLES, FIXTURE], endpoint: stub.url, timeouts: { connect_ms: 2000, response_ms: 5000 } });
});
afterAll(async () => {
  engine.close();
  await stub.close();
});
beforeEach(() => stub.requests.splice(0));

const sent = (path: string) => stub.requests.filter((r) => r.path === path);

describe('examples/specs pins', async () => {
  const pinEngine = await Engine.load({ specs: EXAMPLES });
  afterAll(() => pinEngine.close());
  const files = await pinFiles([join(EXAMPLES, 'tests')]);
  it('exist for every example spec', () => {
    for (const vendor of pinEngine.specs.keys()) expect(files.some((f) => f.includes(`/tests/${vendor}/`))).toBe(true);
  });
  for (const file of files) {
    it(file.slice(file.indexOf('/tests/') + 1), async () => {
      const r = await runPin(pinEngine, file);
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
    });
  }
});

describe('Mixpanel import: per-item errors by index (item_errors)', () => {
  const mixpanel = (): Integration =>
    engine.createIntegration({
      source_id: 'src_1', vendor: 'mixpanel_import', name: 'mixpanel', enabled: true,
      config: { project_id: '3141592', service_account_username: 'sa.user', service_account_secret: 'mp-sa-secret-value', residency: 'eu' },
    });
  const three = () => [event(), event(), event()];

  it('a 400 listing one failed record fails exactly that event; the others are delivered', async () => {
    stub.answer('/import', (body) => ({
      status: 400,
      body: { code: 400, error: 'some data points in the request failed validation', status: 'Bad Request', num_records_imported: body.length - 1,
        failed_records: [{ index: 1, insert_id: body[1].properties.$insert_id, field: 'properties.time', message: "'properties.time' is invalid" }] },
    }));
    const outcomes = await mixpanel().deliverAll(three());
    expect(sent('/import')).toHaveLength(1);
    expect(JSON.parse(sent('/import')[0]!.body)).toHaveLength(3); // the bare list: batch.body is `$items`
    expect(sent('/import')[0]!.headers['x-forwarded-host']).toBe('api-eu.mixpanel.com');
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'failed', 'delivered']);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected', vendor_code: 'properties.time', message: "'properties.time' is invalid", http_status: 400 });
    expect(outcomes[0]).toMatchObject({ http_status: 400, batch_size: 3 });
  });

  it('one record failing on two fields is one failure with both messages, not an unreadable answer', async () => {
    stub.answer('/import', { status: 400, body: { code: 400, failed_records: [{ index: 2, field: 'time', message: 'bad time' }, { index: 2, field: 'event', message: 'bad name' }] } });
    const outcomes = await mixpanel().deliverAll(three());
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'failed']);
    expect(outcomes[2]).toMatchObject({ reason: 'item_rejected', vendor_code: 'time', message: 'bad time; bad name' });
  });

  it('one failed record as a bare object is still read as a list (failed_records[])', async () => {
    stub.answer('/import', { status: 400, body: { code: 400, failed_records: { index: 0, field: 'properties.distinct_id', message: 'bad' } } });
    const outcomes = await mixpanel().deliverAll(three());
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'delivered', 'delivered']);
  });

  it.each([
    [[{ index: 3, message: 'x' }], 'send.batch.item_errors.index 3 is out of range for a batch of 3 item(s) (0 to 2)'],
    [[{ index: '1' }], 'send.batch.item_errors.index must evaluate to an integer, got string "1"'],
    [[{ index: 0.5 }], 'send.batch.item_errors.index must evaluate to an integer, got number 0.5'],
  ])('an unusable index %j fails the whole batch, never a silent success', async (failed, message) => {
    stub.answer('/import', { status: 400, body: { code: 400, failed_records: failed } });
    const outcomes = await mixpanel().deliverAll(three());
    for (const o of outcomes) expect(o).toMatchObject({ status: 'failed', reason: 'batch_results_invalid', message, possibly_duplicated: true });
  });

  it('without max_items, only max_bytes cuts the batches (a file extending the example drops it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mixpanel-bytes-'));
    // extends only reaches files inside the spec folder: the example goes beside the file that extends it.
    await writeFile(join(dir, 'mixpanel_import.yaml'), await readFile(join(EXAMPLES, 'mixpanel_import.yaml')));
    await writeFile(join(dir, 'mixpanel_bytes.yaml'), [
      'extends: mixpanel_import.yaml',
      'vendor: mixpanel_bytes',
      'send:',
      '  batch:',
      '    max_items: null',
      '    max_bytes: 1000',
      '    max_wait_ms: 50',
    ].join('\n'));
    const bytesEngine = await Engine.load({ specs: dir, endpoint: stub.url });
    try {
      expect(bytesEngine.specs.get('mixpanel_bytes')!.spec.send.batch!.max_items).toBeUndefined();
      stub.answer('/import', { status: 200, body: { code: 200, status: 'OK' } });
      const mp = bytesEngine.createIntegration({
        source_id: 'src_1', vendor: 'mixpanel_bytes', name: 'mixpanel', enabled: true,
        config: { project_id: '3141592', service_account_username: 'sa.user', service_account_secret: 'mp-sa-secret-value' },
      });
      const outcomes = await mp.deliverAll(Array.from({ length: 12 }, () => event()));
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
      const bodies = sent('/import').map((r) => r.body);
      expect(bodies.length).toBeGreaterThan(1);
      expect(bodies.map((b) => JSON.parse(b).length).reduce((a, b) => a + b, 0)).toBe(12);
      for (const b of bodies) expect(Buffer.byteLength(b)).toBeLessThanOrEqual(1000);
      expect(sent('/import')[0]!.headers['x-forwarded-host']).toBe('api.mixpanel.com'); // residency defaults to us
    } finally {
      bytesEngine.close();
    }
  });

  it('a 200 with no failed records delivers all; a 400 that lists none fails all by the error rules', async () => {
    stub.answer('/import', { status: 200, body: { code: 200, num_records_imported: 3, status: 'OK' } });
    expect((await mixpanel().deliverAll(three())).map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
    stub.answer('/import', { status: 400, body: { code: 400, error: 'request body is not a JSON array' } });
    for (const o of await mixpanel().deliverAll(three())) {
      expect(o).toMatchObject({ status: 'failed', reason: 'http_error', http_status: 400, vendor_message: 'request body is not a JSON array' });
    }
  });
});

describe('Klaviyo bulk events: batches grouped by profile (group_by, $group)', () => {
  const klaviyo = (): Integration =>
    engine.createIntegration({ source_id: 'src_1', vendor: 'klaviyo_events', name: 'klaviyo', enabled: true, config: { private_api_key: 'pk_live_abc123secret' } });

  it('one request per distinct user, the user named once at the top, only that user’s events inside', async () => {
    stub.answer('/api/event-bulk-create-jobs', { status: 202, body: { data: { type: 'event-bulk-create-job', id: 'job-1' } } });
    const events = [event({ user_id: 'u-a' }), event({ user_id: 'u-b' }), event({ user_id: 'u-a' }), event({ user_id: 'u-b' }), event({ user_id: 'u-a' })];
    const outcomes = await klaviyo().deliverAll(events);
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    const jobs = sent('/api/event-bulk-create-jobs').map((r) => JSON.parse(r.body).data.attributes['events-bulk-create'].data);
    expect(jobs).toHaveLength(2);
    const byUser = Object.fromEntries(jobs.map((j) => [j[0].attributes.profile.data.attributes.external_id, j[0].attributes.events.data.map((e: any) => e.attributes.unique_id)]));
    expect(byUser).toEqual({
      'u-a': [events[0]!.event_id, events[2]!.event_id, events[4]!.event_id],
      'u-b': [events[1]!.event_id, events[3]!.event_id],
    });
    expect(outcomes[0]).toMatchObject({ response_id: 'job-1', batch_size: 3 });
    expect(outcomes[1]).toMatchObject({ batch_size: 2 });
  });

  it('max_in_flight holds across groups, and a group that is done holds nothing afterwards', async () => {
    let now = 0;
    let most = 0;
    stub.answer('/api/event-bulk-create-jobs', () => {
      most = Math.max(most, ++now);
      setTimeout(() => now--, 40);
      return { status: 202, body: {}, delay_ms: 40 };
    });
    const k = klaviyo();
    const outcomes = await k.deliverAll(Array.from({ length: 12 }, (_, i) => event({ user_id: `u-${i}` })));
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(sent('/api/event-bulk-create-jobs')).toHaveLength(12);
    expect(most).toBeLessThanOrEqual(4); // the spec's default max_in_flight, for all 12 groups together
    await new Promise((r) => setImmediate(r));
    // Internal, on purpose: twelve user ids seen once must not leave twelve batchers behind.
    expect((k as unknown as { batch: { batchers: Map<string, unknown> } }).batch.batchers.size).toBe(0);
  });

  it('an event the group cannot be computed for fails alone with a mapping error naming group_by', async () => {
    stub.answer('/api/event-bulk-create-jobs', { status: 202, body: {} });
    const { user_id: _drop, ...anonymous } = event() as Record<string, unknown>;
    const [o, ok] = await klaviyo().deliverAll([anonymous, event()]);
    expect(o).toMatchObject({ status: 'failed', reason: 'mapping_error' });
    expect(o!.message).toContain('send.batch.group_by');
    expect(ok!.status).toBe('delivered');
  });
});

describe('chained auth stages, an origin from the answer, headers (illustrative fixture)', () => {
  let session = 0;
  let access = 0;
  let validSession = '';
  let validAccess = '';
  let host = 'eu1.api.acme.example';
  let sessionLifetime: number | undefined = 3600;
  beforeEach(() => {
    engine.tokens.clear();
    stub.answer('/oauth/session', () => {
      validSession = `s${++session}`;
      return { status: 200, body: { session_token: validSession, ...(sessionLifetime ? { expires_in: sessionLifetime } : {}) } };
    });
    stub.answer('/oauth/exchange', () => ({ status: 200, body: {} }));
    stub.answer('/v1/events', { status: 202, body: { id: 'e-1' } });
  });
  // The exchange and the API check the tokens they are given, as the vendor would.
  const serve = () => {
    stub.answer('/oauth/exchange', (_json, req) => {
      const got = req.headers.authorization;
      if (got !== `Session ${validSession}`) return { status: 401, body: { message: 'session expired' } };
      validAccess = `a${++access}`;
      return { status: 200, body: { access_token: validAccess, instance_url: `https://${host}`, account: `acct-${access}` } };
    });
    stub.answer('/v1/events', (_json, req) => {
      const got = req.headers.authorization;
      return got === `Bearer ${validAccess}` ? { status: 202, body: { id: 'e-1' } } : { status: 401, body: { message: 'token revoked' } };
    });
  };
  const acme = (): Integration => engine.createIntegration({ source_id: 'src_1', vendor: 'acme_chained', name: 'acme', enabled: true, config: { client_id: 'c1', client_secret: 'acme-client-secret' } });

  it('a stale earlier token is recovered by one chain re-run, and the retry goes to the new origin', async () => {
    serve();
    const a = acme();
    expect(await a.deliver(event())).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(sent('/v1/events')[0]!.headers['x-forwarded-host']).toBe('eu1.api.acme.example');
    // The vendor drops every session and token, and moves the account to another region.
    validSession = 'gone';
    validAccess = 'gone';
    host = 'eu2.west.api.acme.example'; // two labels below the suffix: allowed by **.api.acme.example
    stub.requests.splice(0);
    const o = await a.deliver(event());
    expect(o).toMatchObject({ status: 'delivered', attempts: 2 });
    // send 401 → exchange with the cached session 401 → chain re-run: one new session, one new exchange.
    expect(sent('/oauth/session')).toHaveLength(1);
    expect(sent('/oauth/exchange').map((r) => r.headers.authorization)).toEqual(['Session s1', 'Session s2']);
    expect(sent('/v1/events').map((r) => r.headers['x-forwarded-host'])).toEqual(['eu1.api.acme.example', 'eu2.west.api.acme.example']);
    // The whole request is rendered again for the retry, not only its headers.
    expect(sent('/v1/events').map((r) => r.url)).toEqual(['/v1/events?account=acct-1', '/v1/events?account=acct-2']);
    host = 'eu1.api.acme.example';
  });

  it('concurrent deliveries behind a stale chain share one re-run: one new session, one new access token, all delivered', async () => {
    serve();
    const a = acme();
    expect((await a.deliver(event())).status).toBe('delivered');
    const before = { session, access };
    validSession = 'gone';
    validAccess = 'gone';
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => a.deliver(event())));
    expect(outcomes.filter((o) => o.status !== 'delivered')).toEqual([]);
    expect(session - before.session).toBe(1);
    expect(access - before.access).toBe(1);
  });

  it('an access token with no lifetime is kept, and the expired session is not refreshed while it is valid', async () => {
    serve();
    sessionLifetime = 1; // refreshed ~0.5 s before it would expire
    try {
      const a = acme();
      expect((await a.deliver(event())).status).toBe('delivered');
      await new Promise((r) => setTimeout(r, 1_100));
      expect((await a.deliver(event())).status).toBe('delivered');
      expect(sent('/oauth/session')).toHaveLength(1);
      expect(sent('/oauth/exchange')).toHaveLength(1);
      expect(sent('/v1/events')).toHaveLength(2);
    } finally {
      sessionLifetime = 3600;
    }
  });

  it('when the exchange refuses even a fresh session, the chain runs once more only, then fails with the stage hint', async () => {
    stub.answer('/oauth/exchange', { status: 401, body: { message: 'client disabled' } });
    const o = await acme().deliver(event());
    expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', http_status: 401 });
    expect(o.hint).toMatch(/client's access/);
    expect(sent('/oauth/session')).toHaveLength(2);
    expect(sent('/oauth/exchange')).toHaveLength(2);
    expect(sent('/v1/events')).toHaveLength(0);
  });

  it('an origin that is not allowed is refused and named (it is public, not redacted); one with a path is refused as not an origin', async () => {
    stub.answer('/oauth/exchange', { status: 200, body: { access_token: 'tok-1234', instance_url: 'https://evil.example', account: 'a' } });
    const o = await acme().deliver(event());
    expect(o).toMatchObject({ status: 'failed', reason: 'host_not_allowed' });
    expect(o.message).toContain("host 'evil.example'");
    engine.tokens.clear();
    stub.answer('/oauth/exchange', { status: 200, body: { access_token: 'tok-1234', instance_url: 'https://eu1.api.acme.example/x?y=', account: 'a' } });
    const p = await acme().deliver(event());
    expect(p).toMatchObject({ status: 'failed', reason: 'mapping_error' });
    expect(p.message).toMatch(/must be an origin/);
    expect(sent('/v1/events')).toHaveLength(0);
  });

  it('the retry delay is read from the named epoch header: a reset too far away gives up at once', async () => {
    serve();
    const reset = String(Math.floor(Date.now() / 1000) + 3600);
    stub.answer('/v1/events', { status: 429, body: { message: 'slow down' }, headers: { 'X-RateLimit-Reset': reset, 'X-Request-Id': 'req-42' } });
    const o = await acme().deliver(event());
    expect(o).toMatchObject({ status: 'failed', reason: 'http_error', http_status: 429, attempts: 1, vendor_message: 'slow down (request req-42)' });
    expect(o.message).toMatch(/retry after too long/);
  });

  it('an error rule matches a code that only a header carries', async () => {
    serve();
    stub.answer('/v1/events', { status: 503, body: { message: 'unavailable' }, headers: { 'X-Acme-Error': 'account_suspended' } });
    const o = await acme().deliver(event());
    expect(o).toMatchObject({ status: 'failed', http_status: 503, vendor_code: 'account_suspended', retryable: false, attempts: 1 });
    expect(o.hint).toMatch(/suspended/);
  });

  it('preview (with an endpoint) shows the origin as the public output it comes from, and never crashes', async () => {
    const requests = await acme().preview(event());
    expect(requests.map((r) => `${r.stage} ${r.url}`)).toEqual([
      `auth.login ${stub.url}/oauth/session`,
      `auth.access ${stub.url}/oauth/exchange`,
      'send [access.instance_url]/v1/events?account=%5Baccess.account%5D',
    ]);
    expect(requests[2]!.headers.Authorization).toBe('Bearer [redacted]');
  });
});
