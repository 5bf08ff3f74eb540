/**
 * The capture vendor (emulator/capture.ts) over real HTTP, with the example specs: each answered with its
 * success status and a body holding what the spec reads (token, expires_in, token_type, success.id), every
 * request recorded by stage, failures injected per stage and classified by the spec's own rules.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Engine } from '../engine/index.js';
import { formatCaptured, startCapture, type Capture } from '../emulator/capture.js';

const ROOT = new URL('../examples/', import.meta.url).pathname;
const event = JSON.parse(readFileSync(`${ROOT}lead-submitted.json`, 'utf8')) as Record<string, unknown>;
const record = (vendor: string) => (parse(readFileSync(`${ROOT}specs/tests/${vendor}/lead_submitted.yaml`, 'utf8')) as { record: Record<string, unknown> }).record;

let open: { cap: Capture; engine: Engine }[] = [];
afterEach(async () => {
  for (const o of open) {
    o.engine.close();
    await o.cap.close();
  }
  open = [];
});

async function setUp(vendor: string) {
  const engine = await Engine.load({ specs: [`${ROOT}specs/${vendor}.yaml`] });
  const cap = await startCapture({ spec: engine.specs.get(vendor)! });
  open.push({ cap, engine });
  return { cap, integration: engine.createIntegration(record(vendor), { endpoint: cap.url }) };
}

describe('capture vendor', () => {
  it('acme_oauth: answers the token stage with what it reads (access_token, expires_in, token_type Bearer), then the send with 202 and its id', async () => {
    const { cap, integration } = await setUp('acme_oauth_events');
    const o = await integration.deliver(event);
    await integration.flush();
    expect(o).toMatchObject({ status: 'delivered', response_id: 'cap_1' });
    expect(cap.requests.map((r) => [r.stage, r.method, r.host + r.path, r.status])).toEqual([
      ['auth.token', 'POST', 'mytenant.login.acme.example/oauth2/v1/token', 200],
      ['send', 'POST', 'api.acme.example/v1/events', 202],
    ]);
    const token = cap.tokens[0]!;
    expect(cap.requests[1]!.headers.authorization).toBe(`Bearer ${token}`);
    const listing = await (await fetch(`${cap.url}/_capture/requests`)).text();
    expect(listing).toContain('"stage":"auth.token"');
    expect(listing).not.toContain(token);
    expect(listing).not.toContain('s3cret');
    expect(formatCaptured(cap)).not.toContain(token);
  });

  it('klaviyo and mixpanel (batching): each answered with its success status', async () => {
    for (const [vendor, status] of [['klaviyo_events', 202], ['mixpanel_import', 200]] as const) {
      const { cap, integration } = await setUp(vendor);
      const p = integration.deliver(event);
      await integration.flush();
      expect((await p).status).toBe('delivered');
      expect(cap.requests.map((r) => [r.stage, r.status])).toEqual([['send', status]]);
    }
  });

  it('injects failures per stage: the spec rules classify them (code where vendor_error reads it), the Nth request only', async () => {
    const { cap, integration } = await setUp('acme_oauth_events');
    cap.setFaults([{ stage: 'send', status: 403, code: 'insufficient_scope', nth: [1] }]);
    const failed = await integration.deliver(event);
    expect(failed).toMatchObject({ status: 'failed', http_status: 403, vendor_code: 'insufficient_scope' });
    expect(failed.hint).toMatch(/lacks the scope/);
    expect((await integration.deliver({ ...event, event_id: 'evt_2' })).status).toBe('delivered');
    expect(cap.requests.map((r) => [r.stage, r.status, r.fault ?? ''])).toEqual([
      ['auth.token', 200, ''],
      ['send', 403, 'injected 403'],
      ['send', 202, ''],
    ]);
    // An auth stage refused: the auth rule's hint.
    const fresh = await setUp('acme_oauth_events');
    fresh.cap.setFaults([{ stage: 'auth', status: 401, code: 'invalid_client' }]);
    const refused = await fresh.integration.deliver(event);
    expect(refused).toMatchObject({ status: 'failed', reason: 'auth_failed' });
    expect(refused.hint).toMatch(/does not know this client_id/);
  });
});
