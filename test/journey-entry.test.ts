import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REFERENCE_PAYLOAD, event, leadSubmitted, referenceRecord, setup, type Json } from './helpers/fixtures.js';
import type { Emulator } from '../emulator/marketing-cloud.js';
import type { Engine } from '../engine/index.js';

let emu: Emulator;
let engine: Engine;
let close: () => Promise<void>;
beforeAll(async () => ({ emu, engine, close } = await setup()));
afterAll(() => close());
beforeEach(() => emu.reset());

const sent = () => emu.requests.filter((r) => r.path === '/interaction/v1/events');

describe('journey entry, end to end against the emulator', () => {
  it("sends the reference's Lead Submitted payload byte for byte and reports eventInstanceId", async () => {
    const integration = engine.createIntegration(referenceRecord());
    const outcome = await integration.deliver(leadSubmitted());
    expect(outcome.status).toBe('delivered');
    expect(outcome.event_id).toBe('evt_01J9Z6T0B3Q8');
    expect(outcome.response_id).toMatch(/^[0-9a-f-]{36}$/);
    const [req] = sent();
    expect(req!.body).toBe(REFERENCE_PAYLOAD);
    expect(req!.headers['x-forwarded-host']).toBe('mc-abc123xyz.rest.marketingcloudapis.com');
    expect(emu.events()[0]!.eventInstanceId).toBe(outcome.response_id);
  });

  it('requests the token with the reference body, leaving account_id out when absent', async () => {
    const { Engine } = await import('../engine/index.js');
    const fresh = await Engine.load({ endpoint: emu.url }); // its own token cache: the request is made now
    try {
      expect((await fresh.createIntegration(referenceRecord()).deliver(event())).status).toBe('delivered');
    } finally {
      fresh.close();
    }
    const [token] = emu.tokenRequests();
    expect(token!.body).toBe('{"grant_type":"client_credentials","client_id":"abc123clientid","client_secret":"shh-secret-value"}');
    expect(token!.headers['x-forwarded-host']).toBe('mc-abc123xyz.auth.marketingcloudapis.com');
    const record = referenceRecord();
    record.config.account_id = '7281234';
    record.config.client_id = 'mid-client';
    const emu2 = await import('../emulator/marketing-cloud.js').then((m) =>
      m.startMarketingCloudEmulator({ clients: [{ tenant: 'mc-abc123xyz', client_id: 'mid-client', client_secret: 'shh-secret-value', account_ids: ['7281234'] }] }),
    );
    const e2 = await Engine.load({ endpoint: emu2.url });
    try {
      const outcome = await e2.createIntegration(record).deliver(event());
      expect(outcome.status).toBe('delivered');
      expect(emu2.tokenRequests()[0]!.body).toBe('{"grant_type":"client_credentials","client_id":"mid-client","client_secret":"shh-secret-value","account_id":"7281234"}');
      expect(emu2.events()[0]!.mid).toBe('7281234');
    } finally {
      e2.close();
      await emu2.close();
    }
  });

  it('remaps ContactKey through field_mappings', async () => {
    const record: Json = { ...referenceRecord(), field_mappings: { ContactKey: 'properties.crm_id', 'Data.crm_id': 'properties.crm_id' } };
    const e = event();
    e.properties.crm_id = 'CRM-0042';
    const outcome = await engine.createIntegration(record).deliver(e);
    expect(outcome.status).toBe('delivered');
    const body = JSON.parse(sent()[0]!.body) as Json;
    expect(body.ContactKey).toBe('CRM-0042');
    expect(Object.keys(body.Data).at(-1)).toBe('crm_id');
  });
});
