/**
 * Integration records are checked against the record schema and the spec's config schema before
 * anything is delivered: every bad field is listed in one RecordError, and no config value (above all
 * a secret) is ever echoed in it.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, RecordError, type IntegrationRecord } from '../engine/index.js';
import { RECORD_SCHEMA } from '../engine/validate/record.js';
import { referenceRecord, type Json } from './helpers/fixtures.js';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load();
});
afterAll(() => engine.close());

const SECRET = 'S3CRET-do-not-print';

function createError(record: unknown): RecordError {
  try {
    engine.createIntegration(record as IntegrationRecord);
  } catch (e) {
    expect(e).toBeInstanceOf(RecordError);
    return e as RecordError;
  }
  throw new Error('createIntegration accepted a bad record');
}

/** Every text a caller could print or log from the error. */
function printable(e: RecordError): string {
  return [e.message, String(e), e.stack ?? '', JSON.stringify(e), JSON.stringify(e.problems)].join('\n');
}

describe('integration records', () => {
  it("accepts the product reference's record", () => {
    const integration = engine.createIntegration(referenceRecord());
    expect(integration.vendor).toBe('salesforce_marketing_cloud');
    expect(integration.name).toBe('Marketing Cloud — Welcome Journey');
  });

  it('accepts an account_id given as a number, and a record with preset, events and field_mappings', () => {
    const r = referenceRecord();
    r.config.account_id = 7281234;
    const ok = { ...r, preset: 'retail', events: ['Lead Submitted'], field_mappings: { ContactKey: 'properties.crm_id', 'Data.crm_id': 'properties.crm_id' } };
    expect(() => engine.createIntegration(ok)).not.toThrow();
  });

  describe('a record with several bad fields', () => {
    const bad = (): Json => {
      const r = referenceRecord();
      const { client_id: _dropped, ...config } = r.config as Json;
      return {
        ...r,
        enabled: 'yes',
        preset: 'no_such_preset',
        config: {
          ...config,
          tenant_subdomain: 'mc.evil.com/x',
          client_secret: SECRET,
          account_id: 'abc',
          region: 'UNKNOWN-FIELD-VALUE',
        },
        field_mappings: {
          ContactKey: 'properties.(email',
          'Data.crm_id': '$config.nope',
        },
      };
    };

    it('throws one RecordError whose problems name every bad field', () => {
      const err = createError(bad());
      expect(err.code).toBe('record.invalid');
      const problems = err.problems;
      const named = (re: RegExp) => problems.filter((p) => re.test(p));
      expect(named(/^config\.tenant_subdomain\b/)).toHaveLength(1);
      expect(named(/^config\.client_id\b.*required/)).toHaveLength(1);
      expect(named(/^config\.account_id\b/)).toHaveLength(1);
      expect(named(/^config\b.*\bregion\b/)).toHaveLength(1);
      expect(named(/^enabled\b/)).toHaveLength(1);
      expect(named(/^preset\b.*no_such_preset/)).toHaveLength(1);
      expect(named(/^field_mappings\.ContactKey\b/)).toHaveLength(1);
      expect(named(/^field_mappings\.Data\.crm_id\b.*\$config\.nope/)).toHaveLength(1);
      // Fields that are fine are not reported.
      expect(named(/^(config\.client_secret|config\.event_definition_key|source_id|vendor|name|consent_categories)\b/)).toEqual([]);
      expect(problems).toHaveLength(8);
      // The message lists every problem too.
      for (const p of problems) expect(err.message).toContain(p);
    });

    it('never echoes the client_secret or any other config value', () => {
      const err = createError(bad());
      const text = printable(err);
      expect(text).not.toContain(SECRET);
      for (const v of ['mc.evil.com', 'UNKNOWN-FIELD-VALUE', 'datafly_lead_submitted']) expect(text).not.toContain(v);
      expect(err.problems.some((p) => /(^|[^a-z])abc([^a-z]|$)/.test(p))).toBe(false);
    });

    it('never echoes a secret even when the secret itself is the bad value', () => {
      const r = referenceRecord();
      r.config.client_secret = 12345678; // wrong type
      r.config.client_id = { nested: SECRET };
      const text = printable(createError(r));
      expect(text).not.toContain('12345678');
      expect(text).not.toContain(SECRET);
    });
  });

  it('names an unknown vendor and a record that is not an object', () => {
    expect(createError({ ...referenceRecord(), vendor: 'no_such_vendor' }).problems.join('\n')).toMatch(/^vendor: .*no_such_vendor/m);
    expect(createError(null).problems).toHaveLength(1);
    expect(createError([referenceRecord()]).problems).toHaveLength(1);
  });

  it('names missing top-level fields and unknown top-level fields', () => {
    const { source_id: _s, name: _n, ...r } = referenceRecord();
    const problems = createError({ ...r, colour: 'blue' }).problems;
    expect(problems.some((p) => /source_id.*required/.test(p))).toBe(true);
    expect(problems.some((p) => /name.*required/.test(p))).toBe(true);
    expect(problems.some((p) => /unknown field 'colour'/.test(p))).toBe(true);
  });
});

describe('the record schema itself', () => {
  it('is a valid JSON Schema 2020-12 (checked here once, so the engine need not compile the meta-schema at run time)', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    expect(ajv.validateSchema(RECORD_SCHEMA)).toBe(true);
    expect(ajv.errors ?? null).toBeNull();
  });
});
