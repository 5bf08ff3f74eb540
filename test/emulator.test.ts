import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import got from 'got';
import {
  ERROR_DOC_URL,
  formatReceived,
  startMarketingCloudEmulator,
  type Emulator,
  type EmulatorOptions,
} from '../emulator/marketing-cloud.js';

const TENANT = 'mc-abc123xyz';
const AUTH_HOST = `${TENANT}.auth.marketingcloudapis.com`;
const REST_HOST = `${TENANT}.rest.marketingcloudapis.com`;
const CREDS = { grant_type: 'client_credentials', client_id: 'abc123clientid', client_secret: 'shh-secret-value' };
const NOT_AUTHORIZED =
  '{"documentation":"https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm","errorcode":0,"message":"Not Authorized"}';
const INVALID_CLIENT =
  '{"error":"invalid_client","error_description":"Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.","error_uri":"https://developer.salesforce.com/docs"}';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// One keep-alive agent per test file; plenty of sockets for the concurrency test.
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

let emu: Emulator | undefined;
afterEach(async () => {
  await emu?.close();
  emu = undefined;
});

async function start(opts: EmulatorOptions = {}): Promise<Emulator> {
  emu = await startMarketingCloudEmulator(opts);
  return emu;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

async function call(
  e: Emulator,
  method: 'GET' | 'POST' | 'PUT',
  path: string,
  opts: { host?: string; token?: string; json?: unknown; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { 'x-forwarded-host': opts.host ?? REST_HOST, ...opts.headers };
  if (opts.token) headers['authorization'] = `Bearer ${opts.token}`;
  const res = await got(`${e.url}${path}`, {
    method,
    headers,
    ...(opts.json !== undefined ? { json: opts.json } : {}),
    ...(opts.body !== undefined ? { body: opts.body } : {}),
    throwHttpErrors: false,
    retry: { limit: 0 },
    agent: { http: agent },
    ...(opts.timeoutMs ? { timeout: { request: opts.timeoutMs } } : {}),
  });
  let parsed: unknown = undefined;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text: res.body, json: parsed };
}

async function getToken(e: Emulator, extra: Record<string, unknown> = {}, host = AUTH_HOST): Promise<Reply> {
  return call(e, 'POST', '/v2/token', { host, json: { ...CREDS, ...extra } });
}

async function token(e: Emulator, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await getToken(e, extra);
  expect(r.status).toBe(200);
  return r.json.access_token as string;
}

function event(contactKey: unknown = 'jane.doe@example.com', key = 'datafly_lead_submitted'): Record<string, unknown> {
  return { ContactKey: contactKey, EventDefinitionKey: key, Data: { email: 'jane.doe@example.com', lead_value: 0 } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('token endpoint', () => {
  it('issues a token with the reference shape (JSON body)', async () => {
    const e = await start();
    const r = await getToken(e);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({
      token_type: 'Bearer',
      expires_in: 1079,
      soap_instance_url: `https://${TENANT}.soap.marketingcloudapis.com/`,
      rest_instance_url: `https://${TENANT}.rest.marketingcloudapis.com/`,
    });
    expect(typeof r.json.access_token).toBe('string');
    expect(r.json.access_token.length).toBeGreaterThan(20);
    expect(r.json.scope).toContain('journeys_execute');
    expect(e.stats.tokens_issued).toBe(1);
    expect(e.tokenRequests()).toHaveLength(1);
    expect(e.tokenRequests()[0]).toMatchObject({ method: 'POST', tenant: TENANT, host_kind: 'auth', status: 200 });
  });

  it('accepts application/x-www-form-urlencoded', async () => {
    const e = await start({ expires_in: 600 });
    const r = await call(e, 'POST', '/v2/token', {
      host: AUTH_HOST,
      body: new URLSearchParams(CREDS).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.status).toBe(200);
    expect(r.json.expires_in).toBe(600);
    expect(e.requests[0]?.json).toMatchObject({ client_id: 'abc123clientid' });
  });

  it('answers a wrong secret with the exact invalid_client body', async () => {
    const e = await start();
    const r = await getToken(e, { client_secret: 'nope' });
    expect(r.status).toBe(401);
    expect(r.text).toBe(INVALID_CLIENT);
    const r2 = await getToken(e, { client_id: 'other' });
    expect(r2.status).toBe(401);
    expect(r2.text).toBe(INVALID_CLIENT);
  });

  it('rejects an unsupported grant type with 400', async () => {
    const e = await start();
    const r = await getToken(e, { grant_type: 'password' });
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('unsupported_grant_type');
  });

  it('enforces the MID (account_id) a client may request, string or number', async () => {
    const e = await start({
      clients: [{ tenant: TENANT, client_id: 'abc123clientid', client_secret: 'shh-secret-value', account_ids: ['7281234'] }],
    });
    const bad = await getToken(e, { account_id: '999' });
    expect(bad.status).toBe(401);
    expect(bad.json).toEqual({
      error: 'invalid_grant',
      error_description:
        "The client's access to the requested account_id (MID) is not allowed. Make sure the package is installed in, or has access to, that business unit.",
      error_uri: 'https://developer.salesforce.com/docs',
    });
    const t = await token(e, { account_id: 7281234 });
    const ok = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(ok.status).toBe(201);
    expect(e.events()[0]).toMatchObject({ tenant: TENANT, mid: '7281234', source: 'single' });
    // No account_id → token without MID.
    const t2 = await token(e);
    await call(e, 'POST', '/interaction/v1/events', { token: t2, json: event() });
    expect(e.events()[1]?.mid).toBeNull();
  });

  it('takes the tenant from X-Forwarded-Host, else Host; unknown tenants get 404', async () => {
    const e = await start({
      clients: [
        { tenant: TENANT, client_id: 'abc123clientid', client_secret: 'shh-secret-value' },
        { tenant: 'mc-other', client_id: 'other-id', client_secret: 'other-secret' },
      ],
    });
    // The same credentials are not valid on another tenant.
    const wrongTenant = await getToken(e, {}, 'mc-other.auth.marketingcloudapis.com');
    expect(wrongTenant.status).toBe(401);
    expect(e.requests[0]?.tenant).toBe('mc-other');

    const unknown = await getToken(e, {}, 'mc-nobody.auth.marketingcloudapis.com');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ message: 'Not Found', errorcode: 404 });
    const unknownEvents = await call(e, 'POST', '/interaction/v1/events', { host: 'mc-nobody.rest.marketingcloudapis.com', json: event() });
    expect(unknownEvents.status).toBe(404);

    // Host header alone (no X-Forwarded-Host).
    const viaHost = await got.post(`${e.url}/v2/token`, {
      headers: { host: AUTH_HOST },
      json: CREDS,
      throwHttpErrors: false,
      retry: { limit: 0 },
    });
    expect(viaHost.statusCode).toBe(200);
    // No tenant at all (Host is an IP literal) → 404.
    const none = await got.post(`${e.url}/v2/token`, { json: CREDS, throwHttpErrors: false, retry: { limit: 0 } });
    expect(none.statusCode).toBe(404);

    // A token of one tenant is not valid on another.
    const other = await getToken(e, { client_id: 'other-id', client_secret: 'other-secret' }, 'mc-other.auth.marketingcloudapis.com');
    const cross = await call(e, 'POST', '/interaction/v1/events', { token: other.json.access_token, json: event() });
    expect(cross.status).toBe(401);
    expect(cross.text).toBe(NOT_AUTHORIZED);
  });

  it('serves /v2/token only on the auth host and events only on the rest host', async () => {
    const e = await start();
    expect((await getToken(e, {}, REST_HOST)).status).toBe(404);
    const t = await token(e);
    const r = await call(e, 'POST', '/interaction/v1/events', { host: AUTH_HOST, token: t, json: event() });
    expect(r.status).toBe(404);
  });
});

describe('journey entry events', () => {
  it('records an event and answers 201 with an eventInstanceId', async () => {
    const e = await start();
    const t = await token(e);
    const r = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(r.status).toBe(201);
    expect(Object.keys(r.json)).toEqual(['eventInstanceId']);
    expect(r.json.eventInstanceId).toMatch(UUID);
    expect(e.events()).toHaveLength(1);
    expect(e.events()[0]).toMatchObject({
      tenant: TENANT,
      ContactKey: 'jane.doe@example.com',
      EventDefinitionKey: 'datafly_lead_submitted',
      Data: { email: 'jane.doe@example.com', lead_value: 0 },
      eventInstanceId: r.json.eventInstanceId,
    });
    const rec = e.requests.at(-1);
    expect(rec).toMatchObject({ method: 'POST', path: '/interaction/v1/events', tenant: TENANT, host_kind: 'rest', status: 201 });
  });

  it('answers a missing, unknown, revoked or expired token with the exact 401 body', async () => {
    const e = await start({ expires_in: 1 });
    const missing = await call(e, 'POST', '/interaction/v1/events', { json: event() });
    expect(missing.status).toBe(401);
    expect(missing.text).toBe(NOT_AUTHORIZED);
    const unknown = await call(e, 'POST', '/interaction/v1/events', { token: 'not-a-token', json: event() });
    expect(unknown.text).toBe(NOT_AUTHORIZED);

    const t = await token(e);
    expect((await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).status).toBe(201);
    await sleep(1100);
    const expired = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(expired.status).toBe(401);
    expect(expired.text).toBe(NOT_AUTHORIZED);

    e.setExpiresIn(1079);
    const t2 = await token(e);
    e.revokeTokens();
    const revoked = await call(e, 'POST', '/interaction/v1/events', { token: t2, json: event() });
    expect(revoked.status).toBe(401);
    expect(revoked.text).toBe(NOT_AUTHORIZED);
    expect(e.events()).toHaveLength(1);
  });

  it('rejects a missing, null, empty or blank ContactKey with 400 / 10002', async () => {
    const e = await start();
    const t = await token(e);
    for (const ck of [undefined, null, '', '   ']) {
      const body = event(ck);
      if (ck === undefined) delete body['ContactKey'];
      const r = await call(e, 'POST', '/interaction/v1/events', { token: t, json: body });
      expect(r.status).toBe(400);
      expect(r.json).toEqual({
        message: 'ContactKey is required and cannot be null or empty.',
        errorcode: 10002,
        documentation: ERROR_DOC_URL,
      });
    }
    expect(e.events()).toHaveLength(0);
  });

  it('rejects an unknown (case-sensitive) EventDefinitionKey with 400 / 10000', async () => {
    const e = await start();
    const t = await token(e);
    const r = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event('a@b.c', 'Datafly_Lead_Submitted') });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      message:
        "Unable to queue the event: EventDefinitionKey 'Datafly_Lead_Submitted' was not found or is not bound to an active journey.",
      errorcode: 10000,
      documentation: ERROR_DOC_URL,
    });
  });

  it('rejects a body that is not JSON with 400 / 10000', async () => {
    const e = await start();
    const t = await token(e);
    const r = await call(e, 'POST', '/interaction/v1/events', {
      token: t,
      body: '{"ContactKey": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(400);
    expect(r.json.errorcode).toBe(10000);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const e = await start();
    const r = await call(e, 'GET', '/interaction/v1/nothing-here');
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ message: 'Not Found', errorcode: 404 });
  });

  it('answers a non-JSON media type with 415', async () => {
    const e = await start();
    const t = await token(e);
    const r = await call(e, 'POST', '/interaction/v1/events', {
      token: t,
      body: JSON.stringify(event()),
      headers: { 'content-type': 'text/plain' },
    });
    expect(r.status).toBe(415);
    expect(r.json.errorcode).toBe(415);
  });

  it('turns an error thrown inside a handler into a 500 and keeps serving', async () => {
    // A deliberately broken definition (column without a name) makes row processing throw.
    const e = await start({ data_extensions: [{ key: 'broken', columns: [{ name: null as unknown as string }] }] });
    const t = await token(e);
    const r = await call(e, 'POST', '/data/v1/async/dataextensions/key:broken/rows', { token: t, json: { items: [{ a: 1 }] } });
    expect(r.status).toBe(500);
    expect(r.json.errorcode).toBe(500);
    expect(e.requests.at(-1)?.status).toBe(500);
    expect(e.stats.internal_errors).toBe(1);
    expect((await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).status).toBe(201);
  });

  it('handles 1,000 concurrent events', async () => {
    const e = await start();
    const t = await token(e);
    const replies = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => call(e, 'POST', '/interaction/v1/events', { token: t, json: event(`user-${i}@x.io`) })),
    );
    expect(replies.every((r) => r.status === 201)).toBe(true);
    expect(new Set(replies.map((r) => r.json.eventInstanceId)).size).toBe(1000);
    expect(e.events()).toHaveLength(1000);
  });
});

describe('batched journey entry', () => {
  it('enforces 1..100 members and reports NotQueued members in order', async () => {
    const e = await start();
    const t = await token(e);
    const members = (n: number) => Array.from({ length: n }, (_, i) => ({ contactKey: `c${i}`, data: { i } }));

    const tooMany = await call(e, 'POST', '/interaction/v1/async/events', {
      token: t,
      json: { eventDefinitionKey: 'datafly_lead_submitted', members: members(101) },
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.json.errorcode).toBe(10000);
    expect(tooMany.json.message).toContain('100');
    const none = await call(e, 'POST', '/interaction/v1/async/events', {
      token: t,
      json: { eventDefinitionKey: 'datafly_lead_submitted', members: [] },
    });
    expect(none.status).toBe(400);
    const unknownKey = await call(e, 'POST', '/interaction/v1/async/events', {
      token: t,
      json: { eventDefinitionKey: 'nope', members: members(1) },
    });
    expect(unknownKey.status).toBe(400);
    expect(unknownKey.json.message).toContain("EventDefinitionKey 'nope' was not found");

    const ok = await call(e, 'POST', '/interaction/v1/async/events', {
      token: t,
      json: {
        eventDefinitionKey: 'datafly_lead_submitted',
        members: [{ contactKey: 'a', data: { n: 1 } }, { contactKey: '', data: {} }, { data: {} }, { contactKey: 'a', data: { n: 2 } }],
      },
    });
    expect(ok.status).toBe(202);
    expect(ok.json.requestId).toMatch(UUID);
    expect(ok.json.count).toBe(4);
    expect(ok.json.notQueuedCount).toBe(2);
    expect(ok.json.members[0]).toMatchObject({ contactKey: 'a', status: 'Queued' });
    expect(ok.json.members[0].eventInstanceId).toMatch(UUID);
    expect(ok.json.members[1]).toEqual({
      contactKey: '',
      status: 'NotQueued',
      message: 'ContactKey is required and cannot be null or empty.',
    });
    expect(ok.json.members[2].status).toBe('NotQueued');
    expect(ok.json.members[3]).toMatchObject({ contactKey: 'a', status: 'Queued' });

    // 100 is fine.
    const hundred = await call(e, 'POST', '/interaction/v1/async/events', {
      token: t,
      json: { eventDefinitionKey: 'identified', members: members(100) },
    });
    expect(hundred.status).toBe(202);
    expect(e.events()).toHaveLength(102);
    expect(e.events()[0]).toMatchObject({ source: 'batch', ContactKey: 'a', Data: { n: 1 }, requestId: ok.json.requestId });

    const errored = await call(e, 'GET', `/interaction/v1/async/events/status?requestId=${ok.json.requestId}&type=errored`, { token: t });
    expect(errored.status).toBe(200);
    expect(errored.json.count).toBe(2);
    const queued = await call(
      e,
      'GET',
      `/interaction/v1/async/events/status?requestId=${hundred.json.requestId}&type=queued&$page=2&$pageSize=30`,
      { token: t },
    );
    expect(queued.json).toMatchObject({ page: 2, pageSize: 30, count: 100 });
    expect(queued.json.items).toHaveLength(30);
    expect(queued.json.items[0].contactKey).toBe('c30');
  });
});

describe('data extension rows (async)', () => {
  const orders: EmulatorOptions['data_extensions'] = [
    {
      key: 'datafly_orders',
      columns: [{ name: 'order_id', required: true }, { name: 'email', required: true }, { name: 'total' }],
      primary_key: ['order_id'],
    },
  ];

  it('answers an unknown key with CustomObjectNotFound', async () => {
    const e = await start();
    const t = await token(e);
    const r = await call(e, 'POST', '/data/v1/async/dataextensions/key:nope/rows', { token: t, json: { items: [{ a: 1 }] } });
    expect(r.status).toBe(400);
    expect(r.json.requestId).toMatch(UUID);
    expect(r.json.resultMessages).toEqual([
      {
        resultType: 'Validation',
        resultClass: 'Error',
        resultCode: 'CustomObjectNotFound',
        message: "Data extension with key 'nope' was not found.",
      },
    ]);
  });

  it('rejects empty and over-32,000-row requests', async () => {
    const e = await start();
    const t = await token(e);
    const empty = await call(e, 'POST', '/data/v1/async/dataextensions/key:datafly_orders/rows', { token: t, json: { items: [] } });
    expect(empty.status).toBe(400);
    expect(empty.json.resultMessages).toHaveLength(1);
    const items = Array.from({ length: 32_001 }, (_, i) => ({ order_id: i }));
    const big = await call(e, 'POST', '/data/v1/async/dataextensions/key:datafly_orders/rows', { token: t, json: { items } });
    expect(big.status).toBe(400);
    expect(big.json.resultMessages[0].resultCode).toBe('TooManyRows');
    const huge = await call(e, 'POST', '/data/v1/async/dataextensions/key:datafly_orders/rows', {
      token: t,
      json: { items: [{ order_id: 1, blob: 'x'.repeat(6_000_001) }] },
    });
    expect(huge.status).toBe(400);
    expect(huge.json.resultMessages[0].resultCode).toBe('RequestTooLarge');
    expect(e.rows()).toHaveLength(0);
  });

  it('reports row errors with rowIndex; insert duplicates fail, upsert replaces', async () => {
    const e = await start({ data_extensions: orders });
    const t = await token(e);
    const path = '/data/v1/async/dataextensions/key:datafly_orders/rows';
    const r = await call(e, 'POST', path, {
      token: t,
      json: {
        items: [
          { order_id: 'o1', email: 'a@x.io', total: 10 },
          { order_id: 'o2' }, // missing required email
          { order_id: 'o3', email: 'c@x.io', colour: 'red' }, // undeclared column
          { order_id: 'o1', email: 'dup@x.io' }, // duplicate primary key
          { Order_ID: 'o4', EMAIL: 'd@x.io' }, // column names match case-insensitively
        ],
      },
    });
    expect(r.status).toBe(202);
    expect(r.json.resultMessages).toEqual([]);
    const status = await call(e, 'GET', `/data/v1/async/${r.json.requestId}/status`, { token: t });
    expect(status.status).toBe(200);
    expect(status.json.requestId).toBe(r.json.requestId);
    expect(status.json.status).toMatchObject({ requestStatus: 'Complete', resultStatus: 'Error', hasErrors: true });
    const results = await call(e, 'GET', `/data/v1/async/${r.json.requestId}/results`, { token: t });
    expect(results.json.count).toBe(3);
    expect(results.json.items.map((i: { rowIndex: number; errorCode: string }) => [i.rowIndex, i.errorCode])).toEqual([
      [1, 'RequiredColumnMissing'],
      [2, 'InvalidColumnName'],
      [3, 'DuplicatePrimaryKey'],
    ]);
    expect(results.json.items[2]).toMatchObject({ status: 'Error', values: { order_id: 'o1', email: 'dup@x.io' } });
    expect(e.rows('datafly_orders').map((x) => x.rowIndex)).toEqual([0, 4]);

    const up = await call(e, 'PUT', path, { token: t, json: { items: [{ order_id: 'o1', email: 'new@x.io' }] } });
    expect(up.status).toBe(202);
    const upStatus = await call(e, 'GET', `/data/v1/async/${up.json.requestId}/status`, { token: t });
    expect(upStatus.json.status).toMatchObject({ requestStatus: 'Complete', resultStatus: 'OK', hasErrors: false });
    expect(e.table('datafly_orders')).toContainEqual({ order_id: 'o1', email: 'new@x.io' });
    expect(e.table('datafly_orders')).toHaveLength(2);
    expect(e.rows()).toHaveLength(3);
  });

  it('stays Pending for async_processing_ms, and status/results require the token', async () => {
    const e = await start({ async_processing_ms: 150 });
    const t = await token(e);
    const r = await call(e, 'POST', '/data/v1/async/dataextensions/key:datafly_orders/rows', {
      token: t,
      json: { items: [{ order_id: 1 }, { sku: 'x' }] },
    });
    expect(r.status).toBe(202);
    const pending = await call(e, 'GET', `/data/v1/async/${r.json.requestId}/status`, { token: t });
    expect(pending.json.status.requestStatus).toBe('Pending');
    expect(e.rows()).toHaveLength(0);
    expect((await call(e, 'GET', `/data/v1/async/${r.json.requestId}/status`)).text).toBe(NOT_AUTHORIZED);
    await sleep(250);
    const done = await call(e, 'GET', `/data/v1/async/${r.json.requestId}/status`, { token: t });
    expect(done.json.status).toMatchObject({ requestStatus: 'Complete', hasErrors: true, resultStatus: 'Error' });
    const results = await call(e, 'GET', `/data/v1/async/${r.json.requestId}/results`, { token: t });
    expect(results.json.items).toHaveLength(1);
    expect(results.json.items[0]).toMatchObject({ rowIndex: 1, errorCode: 'RequiredColumnMissing' });
    expect(e.rows()).toHaveLength(1);
  });
});

describe('fault injection', () => {
  it('rate_limit_with_retry_after → 429 with Retry-After and errorcode 50100', async () => {
    const e = await start({ faults: { rate_limit_with_retry_after: 1, retry_after_seconds: 5, apply_to: ['events'] } });
    const t = await token(e); // tokens are not affected (apply_to)
    const r = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBe('5');
    expect(r.json).toMatchObject({ message: 'Rate limit exceeded', errorcode: 50100, retryAfter: 5 });
    expect(typeof r.json.documentation).toBe('string');
    expect(e.events()).toHaveLength(0);
    expect(e.stats.rate_limited).toBe(1);
  });

  it('rate_limit_blocked → 429 without Retry-After and errorcode 50200', async () => {
    const e = await start({ faults: { rate_limit_blocked: 1 } });
    const r = await getToken(e);
    expect(r.status).toBe(429);
    expect(r.headers['retry-after']).toBeUndefined();
    expect(r.json).toMatchObject({ message: 'Your requests are temporarily blocked.', errorcode: 50200 });
  });

  it('server_error → 500 and unavailable → 503', async () => {
    const e = await start({ faults: { server_error: 1 } });
    expect((await getToken(e)).status).toBe(500);
    e.setFaults({ unavailable: 1 });
    expect((await getToken(e)).status).toBe(503);
    e.setFaults(undefined);
    expect((await getToken(e)).status).toBe(200);
    expect(e.stats).toMatchObject({ server_errors: 1, unavailable: 1, tokens_issued: 1 });
  });

  it('reset_before_record destroys the socket without recording', async () => {
    const e = await start();
    const t = await token(e);
    e.setFaults({ reset_before_record: 1 });
    await expect(call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).rejects.toThrow();
    expect(e.events()).toHaveLength(0);
    expect(e.stats.resets_before_record).toBe(1);
    expect(e.requests.at(-1)).toMatchObject({ status: 0, fault: 'reset_before_record' });
  });

  it('reset_after_record records the event, then resets', async () => {
    const e = await start();
    const t = await token(e);
    e.setFaults({ reset_after_record: 1 });
    await expect(call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).rejects.toThrow();
    await expect(
      call(e, 'POST', '/interaction/v1/async/events', {
        token: t,
        json: { eventDefinitionKey: 'identified', members: [{ contactKey: 'x' }, { contactKey: 'y' }] },
      }),
    ).rejects.toThrow();
    expect(e.events()).toHaveLength(3);
    expect(e.stats.resets_after_record).toBe(2);
    expect(e.requests.at(-1)).toMatchObject({ status: 0, fault: 'reset_after_record' });
    // A retry of the same event after the fault is cleared produces a duplicate the test can see.
    e.setFaults({});
    expect((await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).status).toBe(201);
    expect(e.events().filter((x) => x.source === 'single')).toHaveLength(2);
  });

  it('slow delays the answer by slow_ms', async () => {
    const e = await start();
    const t = await token(e);
    e.setFaults({ slow: 1, slow_ms: 300 });
    const t0 = Date.now();
    const r = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(r.status).toBe(201);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(e.stats.slow).toBe(1);
  });

  it('token_early_death makes a token die before its stated lifetime', async () => {
    const e = await start({ faults: { token_early_death: 1, token_death_ms: 100 } });
    const r = await getToken(e);
    expect(r.json.expires_in).toBe(1079);
    const t = r.json.access_token as string;
    expect((await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).status).toBe(201);
    await sleep(150);
    const dead = await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    expect(dead.status).toBe(401);
    expect(dead.text).toBe(NOT_AUTHORIZED);
    expect(e.stats.token_early_deaths).toBe(1);
  });

  it('is deterministic for a given seed', async () => {
    const run = async (): Promise<number[]> => {
      const e = await startMarketingCloudEmulator({ faults: { seed: 42, server_error: 0.3, unavailable: 0.2, apply_to: ['events'] } });
      try {
        const t = await token(e);
        const out: number[] = [];
        for (let i = 0; i < 30; i++) out.push((await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() })).status);
        return out;
      } finally {
        await e.close();
      }
    };
    const a = await run();
    const b = await run();
    expect(a).toEqual(b);
    expect(new Set(a).size).toBeGreaterThan(1);
  });
});

describe('formatReceived', () => {
  it('summarises requests with secrets and Authorization redacted', async () => {
    const e = await start();
    const t = await token(e);
    await call(e, 'POST', '/v2/token', {
      host: AUTH_HOST,
      body: new URLSearchParams(CREDS).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await call(e, 'POST', '/interaction/v1/events', { token: t, json: event() });
    const text = formatReceived(e);
    expect(text).not.toContain('shh-secret-value');
    expect(text).not.toContain(t);
    expect(text).toContain('[redacted]');
    expect(text).toContain('POST /v2/token tenant=mc-abc123xyz(auth)');
    expect(text).toContain('POST /interaction/v1/events tenant=mc-abc123xyz(rest) auth=Bearer [redacted] → 201');
    expect(text).toContain('"ContactKey":"jane.doe@example.com"');
    expect(text.split('\n')).toHaveLength(3);
    e.reset();
    expect(e.requests).toHaveLength(0);
    expect(e.stats.requests).toBe(0);
    expect(formatReceived(e)).toBe('(no requests received)');
  });
});
