/**
 * The delivery rules every event goes through (docs: notes/events.md) and the product reference's
 * troubleshooting table, end to end against the emulator: exactly one outcome per event, skipped or
 * failed with the right reason and hint, and nothing sent when nothing should be.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_CLIENT, type Emulator } from '../emulator/marketing-cloud.js';
import type { Engine, Integration, Outcome, SignalEvent } from '../engine/index.js';
import { event, leadSubmitted, referenceRecord, setup, type Json } from './helpers/fixtures.js';

const TENANT = 'mc-abc123xyz';
const EVENTS_PATH = '/interaction/v1/events';
const BU_CLIENT = { tenant: TENANT, client_id: 'bu-client', client_secret: 'bu-secret-value', account_ids: ['7281234'] };

let emu: Emulator;
let engine: Engine;
let close: () => Promise<void>;
beforeAll(async () => ({ emu, engine, close } = await setup({ clients: [DEFAULT_CLIENT, BU_CLIENT] })));
afterAll(() => close());
beforeEach(() => emu.reset());

const sends = () => emu.requests.filter((r) => r.path === EVENTS_PATH);

function recordWith(config: Json = {}, extra: Json = {}): Json {
  const r = referenceRecord();
  return { ...r, ...extra, config: { ...r.config, ...config } };
}

function idOf(e: unknown): string | null {
  const id = (e as Json | null)?.event_id;
  return typeof e === 'object' && e !== null && !Array.isArray(e) && typeof id === 'string' && id !== '' ? id : null;
}

/** Deliver and check the one invariant every outcome has: it names its event. */
async function deliver(integration: Integration, e: unknown): Promise<Outcome> {
  const outcome = await integration.deliver(e as SignalEvent);
  expect(Object.hasOwn(outcome, 'event_id')).toBe(true);
  expect(outcome.event_id).toBe(idOf(e));
  expect(['delivered', 'skipped', 'failed']).toContain(outcome.status);
  return outcome;
}

describe('consent', () => {
  it('consent not granted → skipped consent_not_granted, no request sent', async () => {
    const outcome = await deliver(engine.createIntegration(referenceRecord()), event({ consent: { marketing: false, analytics: true } }));
    expect(outcome).toMatchObject({ status: 'skipped', reason: 'consent_not_granted', attempts: 0 });
    expect(outcome.message).toContain('marketing');
    expect(emu.requests).toHaveLength(0);
  });

  it('consent category absent (or no consent at all) → skipped, no request sent', async () => {
    const integration = engine.createIntegration(referenceRecord());
    const absent = await deliver(integration, event({ consent: { analytics: true } }));
    const { consent: _dropped, ...noConsent } = event();
    const none = await deliver(integration, noConsent);
    const notBoolean = await deliver(integration, event({ consent: { marketing: 'true' } }));
    for (const o of [absent, none, notBoolean]) expect(o).toMatchObject({ status: 'skipped', reason: 'consent_not_granted' });
    expect(emu.requests).toHaveLength(0);
  });

  it("a record without consent_categories uses the spec's default (marketing)", async () => {
    const { consent_categories: _dropped, ...record } = referenceRecord();
    const integration = engine.createIntegration(record);
    const skipped = await deliver(integration, event({ consent: { marketing: false } }));
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'consent_not_granted' });
    expect(emu.requests).toHaveLength(0);
    const delivered = await deliver(integration, event({ consent: { marketing: true } }));
    expect(delivered.status).toBe('delivered');
  });

  it('every listed category must be granted', async () => {
    const integration = engine.createIntegration({ ...referenceRecord(), consent_categories: ['marketing', 'personalisation'] });
    const outcome = await deliver(integration, event({ consent: { marketing: true, analytics: true } }));
    expect(outcome).toMatchObject({ status: 'skipped', reason: 'consent_not_granted' });
    expect(outcome.message).toContain('personalisation');
    expect(emu.requests).toHaveLength(0);
  });
});

describe('enabled and forwarded events', () => {
  it('enabled: false → skipped integration_disabled, no request sent', async () => {
    const outcome = await deliver(engine.createIntegration({ ...referenceRecord(), enabled: false }), event());
    expect(outcome).toMatchObject({ status: 'skipped', reason: 'integration_disabled', attempts: 0 });
    expect(emu.requests).toHaveLength(0);
  });

  it("an event the preset does not forward ('Page Viewed') → skipped event_not_forwarded", async () => {
    const e = event({ type: 'page', event: 'Page Viewed', properties: { email: 'jane.doe@example.com', path: '/pricing' } });
    const outcome = await deliver(engine.createIntegration(referenceRecord()), e);
    expect(outcome).toMatchObject({ status: 'skipped', reason: 'event_not_forwarded', event: 'Page Viewed' });
    expect(emu.requests).toHaveLength(0);
  });

  it("a record with events: ['Identified'] skips Lead Submitted and delivers Identified", async () => {
    const integration = engine.createIntegration({ ...recordWith({ event_definition_key: 'identified' }), events: ['Identified'] });
    const skipped = await deliver(integration, event());
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'event_not_forwarded', event: 'Lead Submitted' });
    expect(emu.requests).toHaveLength(0);
    const delivered = await deliver(integration, identified());
    expect(delivered.status).toBe('delivered');
    expect(sends()).toHaveLength(1);
  });
});

describe('ContactKey check', () => {
  const cases: [string, Json][] = [
    ['email: null', { email: null }],
    ["email: ''", { email: '' }],
    ["email: '   '", { email: '   ' }],
    ['no email property', {}],
  ];
  it.each(cases)('%s (so no ContactKey) → failed check_failed with a ContactKey hint, nothing sent to the events endpoint', async (_name, props) => {
    const e = event();
    const { email: _email, ...rest } = e.properties as Json;
    e.properties = { ...rest, ...props };
    const outcome = await deliver(engine.createIntegration(referenceRecord()), e);
    expect(outcome).toMatchObject({ status: 'failed', reason: 'check_failed', retryable: false });
    expect(outcome.hint).toContain('ContactKey');
    expect(sends()).toHaveLength(0);
  });
});

describe("the troubleshooting table's failures", () => {
  it('unknown event_definition_key → failed 400 with the "Journey is not triggered" hint, not retryable', async () => {
    const outcome = await deliver(engine.createIntegration(recordWith({ event_definition_key: 'no_such_journey' })), event());
    expect(outcome).toMatchObject({ status: 'failed', http_status: 400, retryable: false });
    expect(outcome.hint).toMatch(/^Journey is not triggered/);
    expect(outcome.attempts).toBe(1);
    expect(sends().map((r) => r.status)).toEqual([400]);
    expect(emu.events()).toHaveLength(0);
  });

  it('a tenant_subdomain the emulator does not know → failed 404 with the tenant_subdomain hint', async () => {
    const outcome = await deliver(engine.createIntegration(recordWith({ tenant_subdomain: 'mc-nosuchtenant' })), event());
    expect(outcome).toMatchObject({ status: 'failed', http_status: 404, retryable: false });
    expect(outcome.hint).toMatch(/Wrong tenant_subdomain/);
    expect(emu.tokenRequests().map((r) => r.status)).toEqual([404]);
    expect(sends()).toHaveLength(0);
    expect(emu.events()).toHaveLength(0);
  });

  it('a wrong client_secret → failed 401 with the auth hint, and the secret is not echoed', async () => {
    const outcome = await deliver(engine.createIntegration(recordWith({ client_secret: 'Wrong-Secret-Value-123' })), event());
    expect(outcome).toMatchObject({ status: 'failed', http_status: 401, retryable: false });
    expect(outcome.hint).toMatch(/^401 Unauthorized on auth: confirm client_id\/client_secret/);
    expect(outcome.hint).not.toMatch(/account_id/);
    expect(emu.tokenRequests().map((r) => r.status)).toEqual([401]);
    expect(sends()).toHaveLength(0);
    expect(JSON.stringify(outcome)).not.toContain('Wrong-Secret-Value-123');
  });

  it('an account_id (MID) the client may not use → failed with the account_id mismatch hint', async () => {
    const record = recordWith({ client_id: BU_CLIENT.client_id, client_secret: BU_CLIENT.client_secret, account_id: '9999999' });
    const outcome = await deliver(engine.createIntegration(record), event());
    expect(outcome).toMatchObject({ status: 'failed', http_status: 401, retryable: false });
    expect(outcome.hint).toMatch(/^account_id mismatch/);
    expect(sends()).toHaveLength(0);
    // The same client with its own MID goes through.
    const ok = await deliver(engine.createIntegration({ ...record, config: { ...record.config, account_id: '7281234' } }), event());
    expect(ok.status).toBe('delivered');
    expect(emu.events()[0]!.mid).toBe('7281234');
  });
});

function identified(overrides: Json = {}): Json {
  const base = leadSubmitted();
  const { email, first_name, last_name, phone } = base.properties as Json;
  return event({ type: 'identify', event: 'Identified', properties: { email, first_name, last_name, phone }, ...overrides });
}

function orderCompleted(properties: Json): Json {
  const base = leadSubmitted();
  const { email, first_name, last_name, phone } = base.properties as Json;
  return event({ type: 'track', event: 'Order Completed', properties: { email, first_name, last_name, phone, ...properties } });
}

describe('payloads of the other retail events', () => {
  it('Order Completed: Data carries identity, then the preset fields in order, then user_id', async () => {
    const integration = engine.createIntegration(recordWith({ event_definition_key: 'order_completed' }));
    const products = [
      { product_id: 'SKU-1', name: 'Tee', price: 19.99, quantity: 2 },
      { product_id: 'SKU-2', name: 'Cap', price: 9.99, quantity: 1 },
    ];
    const e = orderCompleted({ order_id: 'ORD-1001', total: 49.97, revenue: 45.43, currency: 'GBP', coupon: 'WELCOME10', products });
    const outcome = await deliver(integration, e);
    expect(outcome.status).toBe('delivered');
    const body = sends()[0]!.body;
    expect(body).toBe(
      JSON.stringify({
        ContactKey: 'jane.doe@example.com',
        EventDefinitionKey: 'order_completed',
        Data: {
          email: 'jane.doe@example.com',
          first_name: 'Jane',
          last_name: 'Doe',
          phone: '+447700900123',
          order_id: 'ORD-1001',
          order_value: 49.97,
          currency: 'GBP',
          coupon: 'WELCOME10',
          item_count: 2,
          products: JSON.stringify(products),
          user_id: 'user-123',
        },
      }),
    );
    expect(Object.keys(JSON.parse(body).Data as Json)).toEqual([
      'email', 'first_name', 'last_name', 'phone', 'order_id', 'order_value', 'currency', 'coupon', 'item_count', 'products', 'user_id',
    ]);
  });

  it('Order Completed without total, coupon or products: order_value falls back to revenue and absent fields are left out', async () => {
    const integration = engine.createIntegration(recordWith({ event_definition_key: 'order_completed' }));
    const outcome = await deliver(integration, orderCompleted({ order_id: 'ORD-1002', revenue: 20, currency: 'EUR' }));
    expect(outcome.status).toBe('delivered');
    const data = JSON.parse(sends()[0]!.body).Data as Json;
    expect(Object.keys(data)).toEqual(['email', 'first_name', 'last_name', 'phone', 'order_id', 'order_value', 'currency', 'user_id']);
    expect(data.order_value).toBe(20);
  });

  it('Identified: Data carries the identity traits and user_id only', async () => {
    const integration = engine.createIntegration(recordWith({ event_definition_key: 'identified' }));
    const outcome = await deliver(integration, identified());
    expect(outcome.status).toBe('delivered');
    expect(sends()[0]!.body).toBe(
      '{"ContactKey":"jane.doe@example.com","EventDefinitionKey":"identified","Data":{"email":"jane.doe@example.com","first_name":"Jane","last_name":"Doe","phone":"+447700900123","user_id":"user-123"}}',
    );
  });
});

describe('invalid events', () => {
  const invalid: [string, unknown][] = [
    ['null', null],
    ['undefined', undefined],
    ['a string', 'Lead Submitted'],
    ['a number', 42],
    ['an array', [leadSubmitted()]],
    ['an empty object', {}],
    ['missing event_id', (() => { const { event_id: _id, ...e } = leadSubmitted(); return e; })()],
    ['an empty event_id', { ...leadSubmitted(), event_id: '' }],
    ['a bad type (with its event_id kept)', { ...leadSubmitted(), event_id: 'evt_bad_type', type: 'screen' }],
    ['properties not an object', { ...leadSubmitted(), event_id: 'evt_bad_props', properties: 'jane' }],
  ];
  it.each(invalid)('%s → failed invalid_event, never a throw, nothing sent', async (_name, e) => {
    const integration = engine.createIntegration(referenceRecord());
    const outcome = await deliver(integration, e);
    expect(outcome).toMatchObject({ status: 'failed', reason: 'invalid_event', retryable: false, attempts: 0 });
    expect(outcome.message).toBeTruthy();
    expect(emu.requests).toHaveLength(0);
  });
});
