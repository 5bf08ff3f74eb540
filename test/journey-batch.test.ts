import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { event, referenceRecord, setup, type Json } from './helpers/fixtures.js';
import type { Emulator } from '../emulator/marketing-cloud.js';
import type { Engine } from '../engine/index.js';

let emu: Emulator;
let engine: Engine;
let close: () => Promise<void>;
beforeAll(async () => ({ emu, engine, close } = await setup()));
afterAll(() => close());
beforeEach(() => emu.reset());

const batchRecord = (): Json => ({ ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch', name: 'Batched journey' });
const batches = () => emu.requests.filter((r) => r.path === '/interaction/v1/async/events');

describe('batched journey entry', () => {
  it('delivers 1,000 events in at most 11 requests plus the token', async () => {
    const integration = engine.createIntegration(batchRecord());
    const events = Array.from({ length: 1000 }, () => event());
    const outcomes = await integration.deliverAll(events);
    expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(1000);
    expect(batches().length).toBeLessThanOrEqual(11);
    expect(emu.requests.length).toBeLessThanOrEqual(12);
    for (const b of batches()) expect((b.json as Json).members.length).toBeLessThanOrEqual(100);
    expect(new Set(outcomes.map((o) => o.response_id)).size).toBe(1000);
    expect(outcomes.map((o) => o.event_id)).toEqual(events.map((e) => e.event_id));
  });

  it('sends each member the Data the single-event spec sends for the same event', async () => {
    const single = engine.createIntegration(referenceRecord());
    const batched = engine.createIntegration(batchRecord());
    const e = event();
    const [, singleSend] = await single.preview(e);
    const [, batchSend] = await batched.preview(e);
    const one = JSON.parse(singleSend!.body!) as Json;
    const many = JSON.parse(batchSend!.body!) as Json;
    expect(many).toEqual({ eventDefinitionKey: 'datafly_lead_submitted', members: [{ contactKey: one.ContactKey, data: one.Data }] });
    expect(JSON.stringify(many.members[0].data)).toBe(JSON.stringify(one.Data));
  });

  it('fails exactly the members the service did not queue', async () => {
    // The service refuses a member whose data is not an object; our own checks do not look at Data.
    const integration = engine.createIntegration({ ...batchRecord(), field_mappings: { Data: 'properties.bad ? "not-an-object" : { "email": properties.email }' } });
    const events = Array.from({ length: 10 }, (_, i) => event({ properties: { ...event().properties, bad: i % 3 === 0 } }));
    const outcomes = await integration.deliverAll(events);
    const failed = outcomes.filter((o) => o.status === 'failed');
    expect(failed.map((o) => o.event_id)).toEqual(events.filter((_, i) => i % 3 === 0).map((e) => e.event_id));
    for (const o of failed) {
      expect(o.reason).toBe('item_rejected');
      expect(o.message).toMatch(/data must be a JSON object/);
      expect(o.hint).toMatch(/did not queue/);
    }
    expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(6);
    expect(batches()).toHaveLength(1);
  });

  it('fails a whole batch with the vendor answer when the request is refused', async () => {
    const integration = engine.createIntegration({ ...batchRecord(), config: { ...batchRecord().config, event_definition_key: 'no_such_key' } });
    const outcomes = await integration.deliverAll([event(), event()]);
    expect(outcomes.map((o) => [o.status, o.http_status])).toEqual([['failed', 400], ['failed', 400]]);
    expect(outcomes[0]!.hint).toMatch(/Journey is not triggered/);
  });

  it('flushes a partial batch after max_wait_ms, without deliverAll', async () => {
    const integration = engine.createIntegration(batchRecord());
    const outcomes = await Promise.all([integration.deliver(event()), integration.deliver(event()), integration.deliver(event())]);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
    expect(batches()).toHaveLength(1);
    expect((batches()[0]!.json as Json).members).toHaveLength(3);
    expect(outcomes[0]!.batch_size).toBe(3);
  });
});
