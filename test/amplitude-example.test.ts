/**
 * Issue 18 §5: examples/specs/amplitude_http_v2.yaml, YAML only, end to end over real HTTP against a local
 * stub that answers as Amplitude's HTTP V2 API documents: a batch holding invalid events is refused whole
 * (400, a map from field to event indexes) and nothing of it is ingested; a request over the size limit is
 * refused with 413. The stub records what it ingested, so "each event exactly once" is checked on its side.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, Engine, type Integration } from '../engine/index.js';
import { event, type Json } from './helpers/fixtures.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';

const SPEC = join(BUNDLED_SPECS_DIR, '..', 'examples', 'specs', 'amplitude_http_v2.yaml');

type AmplitudeEvent = { user_id?: string; device_id?: string; event_type?: string; time?: number; insert_id: string; event_properties?: Json };

let stub: StubVendor;
let engine: Engine;
/** insert_id -> how many times the stub ingested it. */
const ingested = new Map<string, number>();
let sizeLimit = 1_000_000;

/** Amplitude's rules as documented: ids of 5 characters or more, an event_type, an integer time. */
function answer(body: { api_key?: string; events: AmplitudeEvent[] }, raw: number) {
  if (body.api_key !== 'amp-api-key-value') return { status: 400, body: { code: 400, error: 'Invalid API key: ***' } };
  if (raw > sizeLimit) return { status: 413, body: { code: 413, error: 'Payload too large' } };
  const invalid: Record<string, number[]> = {};
  const missing: Record<string, number[]> = {};
  const add = (m: Record<string, number[]>, f: string, i: number) => (m[f] ??= []).push(i);
  body.events.forEach((e, i) => {
    if (e.user_id !== undefined && e.user_id.length < 5) add(invalid, 'user_id', i);
    if (e.device_id !== undefined && e.device_id.length < 5) add(invalid, 'device_id', i);
    if (!e.event_type) add(missing, 'event_type', i);
    if (!Number.isInteger(e.time)) add(invalid, 'time', i);
  });
  if (Object.keys(invalid).length || Object.keys(missing).length) {
    return { status: 400, body: { code: 400, error: 'Request missing required field', events_with_invalid_fields: invalid, events_with_missing_fields: missing } };
  }
  for (const e of body.events) ingested.set(e.insert_id, (ingested.get(e.insert_id) ?? 0) + 1);
  return { status: 200, body: { code: 200, events_ingested: body.events.length, payload_size_bytes: raw, server_upload_time: Date.now() } };
}

beforeAll(async () => {
  stub = await startStubVendor();
  stub.answer('/2/httpapi', (json, req) => answer(json, Number(req.headers['content-length'])));
  engine = await Engine.load({ specs: SPEC, endpoint: stub.url, timeouts: { connect_ms: 2000, response_ms: 5000 } });
});
afterAll(async () => {
  engine.close();
  await stub.close();
});
beforeEach(() => {
  stub.requests.splice(0);
  ingested.clear();
  sizeLimit = 1_000_000;
});

const amplitude = (config: Json = {}): Integration =>
  engine.createIntegration({ source_id: 'src_1', vendor: 'amplitude_http_v2', name: 'amplitude', enabled: true, config: { api_key: 'amp-api-key-value', data_center: 'eu', ...config } });
const requests = () => stub.requests.map((r) => JSON.parse(r.body).events as AmplitudeEvent[]);
const events = (n: number) => Array.from({ length: n }, () => event());

describe('Amplitude HTTP V2 (examples/specs/amplitude_http_v2.yaml)', () => {
  it('a batch refused for 2 of 10 events: the 8 others are sent again and ingested once; the 2 fail with every reason', async () => {
    const list = events(10);
    list[2] = { ...list[2]!, user_id: 'u1' }; // too short: invalid user_id
    list[5] = { ...list[5]!, user_id: 'u2', anonymous_id: 'a2' }; // invalid user_id and device_id: one event, two errors
    const outcomes = await amplitude().deliverAll(list);
    expect(outcomes.map((o) => o.event_id)).toEqual(list.map((e) => e.event_id));
    expect(requests().map((r) => r.length)).toEqual([10, 8]);
    expect(stub.requests[0]!.headers['x-forwarded-host']).toBe('api.eu.amplitude.com');
    const good = list.filter((_, i) => i !== 2 && i !== 5).map((e) => e.event_id);
    expect([...ingested.keys()].sort()).toEqual([...good].sort());
    expect([...ingested.values()].every((n) => n === 1)).toBe(true);
    expect(outcomes.filter((o) => o.status === 'delivered').map((o) => o.event_id).sort()).toEqual([...good].sort());
    expect(outcomes[2]).toMatchObject({ status: 'failed', reason: 'item_rejected', vendor_code: 'user_id', message: 'invalid value for user_id', http_status: 400 });
    expect(outcomes[5]).toMatchObject({ status: 'failed', reason: 'item_rejected', message: 'invalid value for user_id; invalid value for device_id' });
  });

  it('413: the batch goes again in halves until Amplitude takes it; an event too large alone fails with item_too_large', async () => {
    sizeLimit = 1_200;
    const list = events(8);
    list[3] = { ...list[3]!, properties: { ...list[3]!.properties, lead_type: 'x'.repeat(2_000) } };
    const outcomes = await amplitude().deliverAll(list);
    expect(outcomes.map((o) => o.event_id)).toEqual(list.map((e) => e.event_id));
    expect(outcomes[3]).toMatchObject({ status: 'failed', reason: 'item_too_large', http_status: 413, retryable: false });
    const others = list.filter((_, i) => i !== 3).map((e) => e.event_id);
    expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(7);
    expect([...ingested.keys()].sort()).toEqual([...others].sort());
    expect([...ingested.values()].every((n) => n === 1)).toBe(true);
    // Halvings, never more requests than 2n - 1 for n events.
    expect(stub.requests.length).toBeLessThanOrEqual(2 * list.length - 1);
  });

  it('the batch size comes from the record: a Starter-plan record sends at most its max_events_per_request', async () => {
    const outcomes = await amplitude({ max_events_per_request: 3 }).deliverAll(events(7));
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(requests().map((r) => r.length)).toEqual([3, 3, 1]);
    expect(() => amplitude({ max_events_per_request: 5000 })).toThrow(/max_events_per_request/);
  });

  it('a refused API key (400 without a list) fails the batch by the spec’s rule, nothing is resent', async () => {
    const outcomes = await engine
      .createIntegration({ source_id: 'src_1', vendor: 'amplitude_http_v2', name: 'amplitude', enabled: true, config: { api_key: 'wrong-key' } })
      .deliverAll(events(3));
    expect(stub.requests).toHaveLength(1);
    for (const o of outcomes) expect(o).toMatchObject({ status: 'failed', reason: 'http_error', retryable: false, hint: expect.stringContaining('api_key') });
  });
});
