/**
 * Untyped input reaches the typed API through parseRecord and parseEvent: each gives the typed value, or
 * an error whose issues say path, keyword and message for every problem (never a value).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryError, Engine, parseEvent, RecordError, REASONS, type IntegrationRecord, type SignalEvent } from '../engine/index.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load();
});
afterAll(() => engine.close());

const SECRET = 'S3CRET-never-echoed';

describe('engine.parseRecord', () => {
  it('gives the typed record for a good one, and createIntegration takes it', () => {
    const input: unknown = JSON.parse(JSON.stringify(referenceRecord()));
    const record = engine.parseRecord(input);
    expect(record).not.toBeInstanceOf(RecordError);
    const typed = record as IntegrationRecord;
    expect(typed.vendor).toBe('salesforce_marketing_cloud');
    expect(engine.createIntegration(typed).name).toBe('Marketing Cloud — Welcome Journey');
  });

  it('gives a RecordError listing each problem with path, keyword and message, never the value', () => {
    const r = referenceRecord();
    delete r.config.client_id;
    const input: unknown = { ...r, enabled: 'yes', surplus: 1, preset: 'nope', config: { ...r.config, client_secret: SECRET, account_id: 'abc' } };
    const error = engine.parseRecord(input);
    expect(error).toBeInstanceOf(RecordError);
    const issues = (error as RecordError).issues;
    expect(issues).toEqual(
      expect.arrayContaining([
        { path: 'enabled', keyword: 'type', message: 'must be boolean' },
        { path: '', keyword: 'additionalProperties', message: "unknown field 'surplus'" },
        { path: 'config.client_id', keyword: 'required', message: 'is required' },
        { path: 'preset', keyword: 'preset', message: expect.stringContaining("'nope' is not a preset") },
        expect.objectContaining({ path: 'config.account_id', keyword: 'pattern' }),
      ]),
    );
    // The one-line form is path: message, as the CLI prints it.
    expect((error as RecordError).problems).toContain('config.client_id: is required');
    expect(JSON.stringify(issues) + (error as RecordError).message).not.toContain(SECRET);
  });

  it('refuses what is not an object, at the path of the whole record', () => {
    const error = engine.parseRecord([1, 2]);
    expect(error).toBeInstanceOf(RecordError);
    expect((error as RecordError).issues).toEqual([{ path: '', keyword: 'type', message: 'an integration record must be a JSON object' }]);
  });
});

describe('parseEvent', () => {
  it('gives the same event back, typed, when it fits the contract', () => {
    const input: unknown = leadSubmitted();
    const event = parseEvent(input);
    expect(event).toBe(input);
    expect((event as SignalEvent).type).toBe('track');
  });

  it("gives deliver's invalid_event error, with every problem structured", async () => {
    const input: unknown = { type: 'click', event_id: '', properties: [] };
    const error = parseEvent(input);
    expect(error).toBeInstanceOf(DeliveryError);
    expect((error as DeliveryError).code).toBe(REASONS.invalidEvent);
    expect((error as DeliveryError).issues.map((p) => [p.path, p.keyword])).toEqual([
      ['type', 'enum'],
      ['event', 'required'],
      ['event_id', 'required'],
      ['properties', 'type'],
    ]);
    // deliver decides the same way, with the same message.
    const outcome = await engine.createIntegration(referenceRecord()).deliver(input as SignalEvent);
    expect(outcome).toMatchObject({ status: 'failed', reason: 'invalid_event', message: (error as DeliveryError).message });
  });
});
