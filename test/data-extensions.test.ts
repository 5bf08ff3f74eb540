import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { event, referenceRecord, setup, type Json } from './helpers/fixtures.js';
import type { Emulator } from '../emulator/marketing-cloud.js';
import type { Engine } from '../engine/index.js';

let emu: Emulator;
let engine: Engine;
let close: () => Promise<void>;
beforeAll(async () => ({ emu, engine, close } = await setup({ data_extensions: [{ key: 'datafly_orders', primary_key: ['event_id'], columns: undefined }] })));
afterAll(() => close());
beforeEach(() => emu.reset());

const deRecord = (config: Json = {}): Json => {
  const r = referenceRecord();
  delete r.config.event_definition_key;
  return { ...r, vendor: 'salesforce_marketing_cloud_data_extensions', name: 'Orders DE', config: { ...r.config, data_extension_key: 'datafly_orders', ...config } };
};
const order = (extra: Json = {}) =>
  event({ event: 'Order Completed', properties: { email: 'jane.doe@example.com', order_id: 'o-1', total: 42.5, currency: 'GBP', products: [{ sku: 'A', qty: 1 }], ...extra } });
const rowRequests = () => emu.requests.filter((r) => r.path.startsWith('/data/v1/async/dataextensions/'));

describe('data extension rows', () => {
  it('inserts the default row with POST and reports delivered after the results are checked', async () => {
    const integration = engine.createIntegration(deRecord());
    const e = order();
    const [outcome] = await integration.deliverAll([e]);
    expect(outcome!.status).toBe('delivered');
    const [req] = rowRequests();
    expect(req!.method).toBe('POST');
    expect(req!.path).toBe('/data/v1/async/dataextensions/key:datafly_orders/rows');
    expect(JSON.parse(req!.body)).toEqual({
      items: [
        {
          event_id: e.event_id,
          event_name: 'Order Completed',
          timestamp: e.timestamp,
          user_id: 'user-123',
          email: 'jane.doe@example.com',
          order_id: 'o-1',
          total: 42.5,
          currency: 'GBP',
          products: '[{"sku":"A","qty":1}]',
        },
      ],
    });
    expect(emu.requests.some((r) => r.path.endsWith('/status'))).toBe(true);
    expect(emu.requests.some((r) => r.path.endsWith('/results'))).toBe(true);
  });

  it('upserts with PUT, and an insert of an existing key fails only that event', async () => {
    const upsert = engine.createIntegration(deRecord({ mode: 'upsert' }));
    const e1 = order();
    await upsert.deliverAll([e1]);
    expect(rowRequests()[0]!.method).toBe('PUT');
    const insert = engine.createIntegration(deRecord());
    const e2 = order();
    const outcomes = await insert.deliverAll([e1, e2]);
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'delivered']);
    expect(outcomes[0]!.vendor_code).toBe('DuplicatePrimaryKey');
    expect(outcomes[0]!.hint).toMatch(/upsert/);
  });

  it('fails every event of a batch for an unknown data extension, with the hint', async () => {
    const integration = engine.createIntegration(deRecord({ data_extension_key: 'nope' }));
    const outcomes = await integration.deliverAll([order(), order()]);
    expect(outcomes.map((o) => [o.status, o.http_status, o.vendor_code])).toEqual([
      ['failed', 400, 'CustomObjectNotFound'],
      ['failed', 400, 'CustomObjectNotFound'],
    ]);
    expect(outcomes[0]!.hint).toMatch(/External Key/);
  });

  it('reshapes rows with field_mappings', async () => {
    const integration = engine.createIntegration({ ...deRecord(), field_mappings: { products: null, order_total: 'properties.total' } });
    await integration.deliverAll([order()]);
    const row = (JSON.parse(rowRequests()[0]!.body) as Json).items[0];
    expect(row.products).toBeUndefined();
    expect(row.order_total).toBe(42.5);
  });

  it('never puts more than 32,000 rows in one request', async () => {
    emu.reset();
    const integration = engine.createIntegration(deRecord({ mode: 'upsert', wait_for_results: false }));
    const events = Array.from({ length: 32_001 }, (_, i) => event({ event: 'Order Completed', properties: { order_id: `o-${i}` } }));
    const outcomes = await integration.deliverAll(events);
    expect(outcomes.filter((o) => o.status !== 'delivered').slice(0, 3)).toEqual([]);
    const sizes = rowRequests().map((r) => (r.json as Json).items.length);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(32_001);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(32_000);
    for (const r of rowRequests()) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(5_000_000);
  });

  it('follows paged results, so every rejected row fails its own event (120 errors, 50 per page)', async () => {
    emu.reset();
    const integration = engine.createIntegration(deRecord());
    // Insert 120 orders, then replay them (the primary key here is event_id) with one new order in the
    // middle: the 120 replays are duplicates, rejected over three pages of results; the new one is not.
    const first = Array.from({ length: 120 }, (_, i) => event({ event: 'Order Completed', properties: { order_id: `p-${i}` } }));
    expect((await integration.deliverAll(first)).every((o) => o.status === 'delivered')).toBe(true);
    const fresh = event({ event: 'Order Completed', properties: { order_id: 'p-new' } });
    const replay = [...first.slice(0, 60), fresh, ...first.slice(60)];
    const outcomes = await integration.deliverAll(replay);
    expect(outcomes.map((o, i) => (o.status === 'failed' ? i : -1)).filter((i) => i >= 0)).toEqual(replay.map((_, i) => i).filter((i) => i !== 60));
    expect(outcomes[60]!.status).toBe('delivered');
    expect(outcomes[0]!.vendor_code).toBe('DuplicatePrimaryKey');
    expect(emu.requests.filter((r) => r.path.endsWith('/results')).map((r) => r.query)).toContain('?$page=3');
  });
});
