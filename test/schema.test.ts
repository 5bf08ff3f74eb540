import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, expect } from 'vitest';
import Ajv2020Module from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { parseSource } from '../engine/load/source.js';

// ajv is CommonJS: under NodeNext the default import is typed as the module object, so take the class
// from `.default` when it is there (type level) and fall back to the import itself (runtime shapes vary).
const Ajv2020 = ((Ajv2020Module as unknown as { default?: typeof Ajv2020Module.default }).default ??
  Ajv2020Module) as unknown as typeof Ajv2020Module.default;

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schemaPath = join(root, 'schemas', 'integration-spec.schema.json');
const specsDir = join(root, 'specs');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Obj;

function compile() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  return ajv.compile(schema);
}

const validate = compile();

function loadSpec(file: string): Obj {
  const path = join(specsDir, file);
  return parseSource(path, readFileSync(path, 'utf8')).source.value as Obj;
}

const specFiles = readdirSync(specsDir)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();

/** A small valid spec, independent of the real spec files. */
function minimalSpec(): Obj {
  return {
    spec_version: 1,
    vendor: 'example_vendor',
    title: 'Example',
    version: '0.1.0',
    config: {
      type: 'object',
      required: ['api_key'],
      properties: { api_key: { type: 'string', minLength: 1, secret: true } },
    },
    allowed_hosts: ['api.example.com'],
    send: {
      request: {
        method: 'POST',
        url: 'https://api.example.com/v1/events',
        headers: { Authorization: 'Bearer {$config.api_key}' },
        body: { event: 'event', n: 1, ok: true, nothing: null, nested: { id: 'user_id', '...': '$fields' } },
      },
    },
  };
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function expectValid(spec: unknown): void {
  const ok = validate(spec);
  expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 2)).toEqual([]);
  expect(ok).toBe(true);
}

function expectInvalid(spec: unknown): void {
  expect(validate(spec)).toBe(false);
}

function asObj(value: Json | undefined): Obj {
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`expected an object, got ${JSON.stringify(value)}`);
  }
  return value;
}

describe('integration spec JSON Schema', () => {
  it('is a draft 2020-12 schema that compiles in Ajv strict mode', () => {
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.$id).toBe('https://cdn.jsdelivr.net/npm/signal-integrations/schemas/integration-spec.schema.json');
    expect(typeof schema.title).toBe('string');
    expect(typeof schema.description).toBe('string');
    expect(() => compile()).not.toThrow();
  });

  it('finds spec files to validate', () => {
    expect(specFiles.length).toBeGreaterThan(0);
  });

  // A spec that `extends` another is checked as the engine sees it: merged over what it extends.
  for (const file of specFiles) {
    it(`accepts specs/${file}`, () => {
      const { source, diagnostics } = parseSource(join(specsDir, file), readFileSync(join(specsDir, file), 'utf8'));
      expect(diagnostics).toEqual([]);
      expectValid(source.value);
    });
  }

  // Files that extend another, and partials, are written against the variant that requires nothing.
  const extendsSchema = JSON.parse(readFileSync(join(root, 'schemas', 'integration-spec-extends.schema.json'), 'utf8')) as Obj;
  const validatePartial = new Ajv2020({ strict: true, allErrors: true }).compile(extendsSchema);
  for (const file of [...specFiles, ...readdirSync(join(specsDir, 'partials')).map((f) => join('partials', f))]) {
    it(`specs/${file} fits the schema its header names`, () => {
      const text = readFileSync(join(specsDir, file), 'utf8');
      const header = /^# yaml-language-server: \$schema=(\S+)/.exec(text)?.[1];
      expect(header).toMatch(/integration-spec(-extends)?\.schema\.json$/);
      const check = header!.includes('-extends') ? validatePartial : validate;
      expect(check(parse(text)), JSON.stringify(check.errors)).toBe(true);
      // Only files that extend another (or partials) may use the relaxed schema.
      if (header!.includes('-extends')) expect('extends' in (parse(text) as Obj) || file.startsWith('partials')).toBe(true);
    });
  }

  it('accepts a minimal spec with constants, nested mappings and a spread', () => {
    expectValid(minimalSpec());
  });

  it('accepts status classes, status lists, network rules, batches and presets', () => {
    const spec = minimalSpec();
    const send = asObj(spec.send);
    send.success = { status: ['2xx', 202], id: 'id', keep: { request_id: 'requestId' } };
    send.errors = [
      { when: { status: ['5xx', 429] }, action: 'retry' },
      { when: { network: ['ECONNRESET', 'ETIMEDOUT'] }, action: 'retry' },
      { when: { network: true }, action: 'retry' },
      { when: { code: [10002, 'E_BAD'], message_contains: 'invalid' }, action: 'fail', hint: 'fix it' },
    ];
    send.batch = { max_items: 100, max_bytes: 1_000_000, max_wait_ms: 0, body: { items: '$items' } };
    spec.allowed_hosts = ['*.example.com', 'localhost', '127.0.0.1'];
    spec.presets = { basic: { default: true, events: { 'Order Completed': { fields: { total: 'properties.total' } } } } };
    expectValid(spec);
  });

  describe('rejects broken specs', () => {
    const base = specFiles.includes('salesforce_marketing_cloud.yaml')
      ? loadSpec('salesforce_marketing_cloud.yaml')
      : minimalSpec();

    it('missing send', () => {
      const spec = clone(base);
      delete spec.send;
      expectInvalid(spec);
    });

    it('bad method', () => {
      const spec = clone(base);
      asObj(asObj(spec.send).request).method = 'FETCH';
      expectInvalid(spec);
    });

    it('bad status class "6xx"', () => {
      const spec = clone(base);
      asObj(spec.send).success = { status: ['6xx'] };
      expectInvalid(spec);
    });

    it('status code out of range', () => {
      const spec = clone(base);
      asObj(spec.send).errors = [{ when: { status: 600 }, action: 'fail' }];
      expectInvalid(spec);
    });

    it('unknown error action', () => {
      const spec = clone(base);
      asObj(spec.send).errors = [{ when: { status: 500 }, action: 'ignore' }];
      expectInvalid(spec);
    });

    it('unknown top-level key', () => {
      const spec = clone(base);
      spec.extends = 'other_vendor';
      expectInvalid(spec);
    });

    it('unknown key inside a stage', () => {
      const spec = clone(base);
      asObj(asObj(spec.send).request).timeout = 5;
      expectInvalid(spec);
    });

    it('auth stage without cache_key', () => {
      const spec = clone(base);
      spec.auth = [
        {
          name: 'token',
          request: { method: 'POST', url: 'https://auth.example.com/token' },
          result: { access_token: 'access_token' },
        },
      ];
      expectInvalid(spec);
    });

    it('wrong spec_version, vendor name and version', () => {
      for (const [key, value] of [
        ['spec_version', 2],
        ['vendor', 'Salesforce-MC'],
        ['version', 'v1'],
      ] as const) {
        const spec = clone(base);
        spec[key] = value;
        expectInvalid(spec);
      }
    });

    it('allowed_hosts with a scheme, a path or a bare wildcard', () => {
      for (const host of ['https://api.example.com', 'api.example.com/v1', '*', '*.com', 'api.*.example.com']) {
        const spec = clone(base);
        spec.allowed_hosts = [host];
        expectInvalid(spec);
      }
    });

    it('config that is not an object schema with properties', () => {
      const spec = clone(base);
      spec.config = { type: 'string' };
      expectInvalid(spec);
      const spec2 = clone(base);
      spec2.config = { type: 'object' };
      expectInvalid(spec2);
    });

    it('mapping values that are arrays', () => {
      const spec = clone(base);
      asObj(asObj(spec.send).request).body = { list: ['a', 'b'] };
      expectInvalid(spec);
    });

    it('batch with max_items 0 and timeouts of 0', () => {
      const spec = clone(base);
      asObj(spec.send).batch = { max_items: 0 };
      expectInvalid(spec);
      const spec2 = clone(base);
      spec2.timeouts = { connect_ms: 0 };
      expectInvalid(spec2);
    });

    it('duplicate consent categories', () => {
      const spec = clone(base);
      spec.consent_categories = ['marketing', 'marketing'];
      expectInvalid(spec);
    });
  });

  it('has a non-empty description on every property, at every depth', () => {
    const missing: string[] = [];
    let count = 0;

    // Walk schema positions only (not example/default/const/enum values), so a config field that is
    // itself called `properties` is not mistaken for the keyword.
    const walk = (node: Json | undefined, path: string): void => {
      if (node === null || node === undefined || typeof node !== 'object' || Array.isArray(node)) return;
      for (const [keyword, value] of Object.entries(node)) {
        const at = `${path}/${keyword}`;
        if (keyword === 'properties') {
          for (const [name, sub] of Object.entries(asObj(value))) {
            count += 1;
            const description = asObj(sub).description;
            if (typeof description !== 'string' || description.trim() === '') missing.push(`${at}/${name}`);
            walk(sub, `${at}/${name}`);
          }
        } else if (keyword === '$defs' || keyword === 'patternProperties' || keyword === 'dependentSchemas') {
          for (const [name, sub] of Object.entries(asObj(value))) walk(sub, `${at}/${name}`);
        } else if (keyword === 'anyOf' || keyword === 'oneOf' || keyword === 'allOf' || keyword === 'prefixItems') {
          (value as Json[]).forEach((sub, i) => walk(sub, `${at}/${i}`));
        } else if (
          [
            'items',
            'additionalProperties',
            'unevaluatedProperties',
            'unevaluatedItems',
            'propertyNames',
            'contains',
            'not',
            'if',
            'then',
            'else',
          ].includes(keyword)
        ) {
          walk(value, at);
        }
      }
    };

    walk(schema, '#');
    expect(count).toBeGreaterThan(50);
    expect(missing).toEqual([]);
  });
});
