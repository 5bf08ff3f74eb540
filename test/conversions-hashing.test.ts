/**
 * Issue 18 §5: a conversions API that hashes, YAML only — examples/specs/pinterest_conversions.yaml — end to
 * end over loopback against a stub Pinterest: the customer identifiers arrive as SHA-256 hex of the
 * normalised values, each checked against a digest computed here with node:crypto; a digest sent by the
 * source is not hashed twice; events Pinterest does not process fail alone. (Its pins run with the other
 * examples' in language-shapes.test.ts.)
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, Engine, type Integration } from '../engine/index.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';

const SPEC = join(BUNDLED_SPECS_DIR, '..', 'examples', 'specs', 'pinterest_conversions.yaml');
const PATH = '/v5/ad_accounts/549755885175/events';
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

let stub: StubVendor;
let engine: Engine;
let pinterest: Integration;
beforeAll(async () => {
  stub = await startStubVendor();
  engine = await Engine.load({ specs: SPEC, endpoint: stub.url, timeouts: { connect_ms: 2000, response_ms: 5000 } });
  pinterest = engine.createIntegration({
    source_id: 'src_1', vendor: 'pinterest_conversions', name: 'pinterest', enabled: true,
    config: { ad_account_id: '549755885175', conversion_token: 'pina_conv_secret_value', default_country_code: '+44' },
  });
});
afterAll(async () => {
  engine.close();
  await stub.close();
});
beforeEach(() => stub.requests.splice(0));

let n = 0;
const order = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  type: 'track' as const, event: 'Order Completed', event_id: `evt_${++n}`, timestamp: '2026-11-27T10:16:02.000Z', user_id: `user-${n}`,
  properties: { order_id: `ord-${n}`, total: 10 * n, currency: 'GBP', ...properties }, consent: { advertising: true }, ...extra,
});

describe('Pinterest API for Conversions (examples/specs)', () => {
  it('sends normalised, SHA-256-hashed identifiers in one batch; each event is delivered as Pinterest processed it', async () => {
    stub.answer(PATH, (body) => ({ status: 200, body: { num_events_received: body.data.length, num_events_processed: body.data.length, events: body.data.map(() => ({ status: 'processed' })) } }));
    const upstream = sha256('already@hashed.example').toUpperCase();
    const events = [
      order({ email: '  Jane.Doe@Example.COM ', phone: '07700 900123' }),
      order({ email: upstream, phone: '+1 (650) 555-1212' }),
      order({ email: 'x@y.example', phone: 'not a phone' }),
    ];
    const outcomes = await pinterest.deliverAll(events);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(stub.requests).toHaveLength(1);
    const req = stub.requests[0]!;
    expect(req.headers.authorization).toBe('Bearer pina_conv_secret_value');
    expect(req.headers['x-forwarded-host']).toBe('api.pinterest.com');
    const data = JSON.parse(req.body).data as { user_data: Record<string, string[]>; event_time: number; event_name: string; custom_data: Record<string, string> }[];
    expect(data.map((d) => d.user_data)).toEqual([
      { em: [sha256('jane.doe@example.com')], ph: [sha256('447700900123')], external_id: [sha256(events[0]!.user_id)] },
      { em: [upstream.toLowerCase()], ph: [sha256('16505551212')], external_id: [sha256(events[1]!.user_id)] },
      { em: [sha256('x@y.example')], external_id: [sha256(events[2]!.user_id)] }, // no phone number: no ph at all
    ]);
    expect(data[0]).toMatchObject({ event_name: 'checkout', event_time: 1795774562, custom_data: { currency: 'GBP', value: String(events[0]!.properties.total) } });
    // Nothing personal travels in clear.
    expect(req.body).not.toMatch(/jane|example\.com|7700|650/i);
  });

  it('an event Pinterest did not process fails alone, with its message', async () => {
    stub.answer(PATH, (body) => ({
      status: 200,
      body: { num_events_received: body.data.length, num_events_processed: 1, events: [{ status: 'processed' }, { status: 'failed', error_message: 'event_time is too old' }] },
    }));
    const outcomes = await pinterest.deliverAll([order({ email: 'a@b.example' }), order({ email: 'c@d.example' })]);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'failed']);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected', message: 'event_time is too old', batch_size: 2 });
  });

  it('an event without a usable e-mail is not sent (and no digest of an empty string is made)', async () => {
    stub.answer(PATH, { status: 200, body: { num_events_received: 0, num_events_processed: 0, events: [] } });
    const [o] = await pinterest.deliverAll([order({ email: '   ' })]);
    expect(o).toMatchObject({ status: 'failed', reason: 'check_failed' });
    expect(stub.requests).toHaveLength(0);
  });

  it('a refused token fails the batch with the spec’s hint', async () => {
    stub.answer(PATH, { status: 401, body: { code: 2, message: 'Authentication failed.' } });
    const [o] = await pinterest.deliverAll([order({ email: 'a@b.example' })]);
    expect(o).toMatchObject({ status: 'failed', http_status: 401, vendor_message: 'Authentication failed.' });
    expect(o!.hint).toMatch(/conversion token/);
  });
});
