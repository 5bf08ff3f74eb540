/**
 * `preview` builds exactly the requests `deliver` would send, with secrets and tokens redacted, and sends
 * nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Emulator } from '../emulator/marketing-cloud.js';
import { Engine, type PreviewRequest } from '../engine/index.js';
import { REFERENCE_PAYLOAD, event, leadSubmitted, referenceRecord, setup, type Json } from './helpers/fixtures.js';

const AUTH_HOST = 'mc-abc123xyz.auth.marketingcloudapis.com';
const REST_HOST = 'mc-abc123xyz.rest.marketingcloudapis.com';
const SECRET = 'shh-secret-value';
const AUTH_BODY = '{"grant_type":"client_credentials","client_id":"abc123clientid","client_secret":"[redacted]"}';

let emu: Emulator;
let engine: Engine; // pointed at the emulator
let plain: Engine; // no endpoint override
let close: () => Promise<void>;
beforeAll(async () => {
  ({ emu, engine, close } = await setup());
  plain = await Engine.load();
});
afterAll(async () => {
  plain.close();
  await close();
});
beforeEach(() => emu.reset());

function header(req: PreviewRequest, name: string): string | undefined {
  const hit = Object.entries(req.headers).find(([k]) => k.toLowerCase() === name.toLowerCase());
  return hit?.[1];
}

describe('preview', () => {
  it("of the reference event: the token request and the send request, exactly, with secrets redacted", async () => {
    const preview = await plain.createIntegration(referenceRecord()).preview(leadSubmitted());
    expect(preview.map((r) => r.stage)).toEqual(['auth.token', 'send']);
    const [auth, send] = preview as [PreviewRequest, PreviewRequest];

    expect(auth.method).toBe('POST');
    expect(auth.url).toBe(`https://${AUTH_HOST}/v2/token`);
    expect(auth.body).toBe(AUTH_BODY);
    expect(header(auth, 'content-type')).toBe('application/json');

    expect(send.method).toBe('POST');
    expect(send.url).toBe(`https://${REST_HOST}/interaction/v1/events`);
    expect(send.body).toBe(REFERENCE_PAYLOAD);
    expect(header(send, 'authorization')).toBe('Bearer [redacted]');
    expect(header(send, 'content-type')).toBe('application/json; charset=utf-8');

    for (const r of preview) expect(header(r, 'x-forwarded-host')).toBeUndefined();
    expect(JSON.stringify(preview)).not.toContain(SECRET);
  });

  it('sends nothing: the emulator behind the endpoint receives no request', async () => {
    const integration = engine.createIntegration(referenceRecord());
    await integration.preview(event());
    await integration.preview(event());
    expect(emu.requests).toHaveLength(0);
    expect(emu.stats.requests).toBe(0);
  });

  it('with an endpoint: URLs point to it and X-Forwarded-Host carries the original host', async () => {
    const preview = await engine.createIntegration(referenceRecord()).preview(leadSubmitted());
    const [auth, send] = preview as [PreviewRequest, PreviewRequest];
    expect(auth.url).toBe(`${emu.url}/v2/token`);
    expect(header(auth, 'x-forwarded-host')).toBe(AUTH_HOST);
    expect(send.url).toBe(`${emu.url}/interaction/v1/events`);
    expect(header(send, 'x-forwarded-host')).toBe(REST_HOST);
    expect(auth.body).toBe(AUTH_BODY);
    expect(send.body).toBe(REFERENCE_PAYLOAD);
    expect(header(send, 'authorization')).toBe('Bearer [redacted]');
    expect(JSON.stringify(preview)).not.toContain(SECRET);
    expect(emu.requests).toHaveLength(0);
  });

  it('a per-integration endpoint with a base path keeps the original path after it', async () => {
    const integration = plain.createIntegration(referenceRecord(), { endpoint: `${emu.url}/proxy/` });
    const [auth, send] = (await integration.preview(leadSubmitted())) as [PreviewRequest, PreviewRequest];
    expect(auth.url).toBe(`${emu.url}/proxy/v2/token`);
    expect(send.url).toBe(`${emu.url}/proxy/interaction/v1/events`);
    expect(header(send, 'x-forwarded-host')).toBe(REST_HOST);
    expect(emu.requests).toHaveLength(0);
  });

  it('is what deliver sends: same bodies and headers (tokens aside) as the requests the emulator received', async () => {
    const integration = engine.createIntegration(referenceRecord());
    const e = leadSubmitted();
    const preview = await integration.preview(e);
    expect((await integration.deliver(e)).status).toBe('delivered');
    const [tokenReq] = emu.tokenRequests();
    const sendReq = emu.requests.find((r) => r.path === '/interaction/v1/events')!;
    const [auth, send] = preview as [PreviewRequest, PreviewRequest];
    expect(tokenReq!.body.replace(SECRET, '[redacted]')).toBe(auth.body);
    expect(sendReq.body).toBe(send.body);
    expect(sendReq.headers['x-forwarded-host']).toBe(header(send, 'x-forwarded-host'));
    expect(sendReq.headers['content-type']).toBe(header(send, 'content-type'));
    expect(String(sendReq.headers['authorization']).replace(/^Bearer \S+$/, 'Bearer [redacted]')).toBe(header(send, 'authorization'));
  });

  it('never shows a cached token: after a real delivery the preview still reads Bearer [redacted]', async () => {
    const integration = engine.createIntegration(referenceRecord());
    expect((await integration.deliver(event())).status).toBe('delivered');
    const token = String(emu.requests.find((r) => r.path === '/interaction/v1/events')!.headers['authorization']).replace(/^Bearer /, '');
    expect(token.length).toBeGreaterThan(20);
    const before = emu.requests.length;

    const preview = await integration.preview(event());
    expect(header(preview[1]!, 'authorization')).toBe('Bearer [redacted]');
    const text = JSON.stringify(preview);
    expect(text).not.toContain(token);
    expect(text).not.toContain(SECRET);
    expect(emu.requests).toHaveLength(before);
  });

  it('shows a non-secret account_id in the token request', async () => {
    const record = referenceRecord();
    record.config.account_id = '7281234';
    const [auth] = (await plain.createIntegration(record).preview(event())) as [PreviewRequest];
    expect(auth.body).toBe('{"grant_type":"client_credentials","client_id":"abc123clientid","client_secret":"[redacted]","account_id":"7281234"}');
  });
});

describe("preview applies deliver's gate (enabled, forwarded events, consent): one code path", () => {
  const cases: [string, () => { record: Json; event: Json }, string][] = [
    ['a disabled integration', () => ({ record: { ...referenceRecord(), enabled: false }, event: event() }), 'integration_disabled'],
    ['an event the record does not forward', () => ({ record: referenceRecord(), event: event({ type: 'page', event: 'Page Viewed' }) }), 'event_not_forwarded'],
    ['an event without the consent the record requires', () => ({ record: referenceRecord(), event: event({ consent: { marketing: false } }) }), 'consent_not_granted'],
  ];
  for (const [what, make, reason] of cases) {
    it(`${what}: skipped with deliver's reason and message, no requests, nothing sent`, async () => {
      const { record, event: e } = make();
      const integration = engine.createIntegration(record);
      const previewed = await integration.previewEvent(e);
      const outcome = await integration.deliver(e);
      expect(outcome).toMatchObject({ status: 'skipped', reason });
      expect(previewed).toEqual({ status: 'skipped', reason: outcome.reason, message: outcome.message });
      expect(await integration.preview(e)).toEqual([]);
      expect(emu.requests).toHaveLength(0);
    });
  }

  it('an event deliver sends: would_send, with the requests preview lists', async () => {
    const integration = plain.createIntegration(referenceRecord());
    const p = await integration.previewEvent(leadSubmitted());
    expect(p.status).toBe('would_send');
    expect(p.status === 'would_send' && p.requests).toEqual(await integration.preview(leadSubmitted()));
  });
});
