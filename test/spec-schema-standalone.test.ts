/**
 * The spec schema's validator generated at build time (ajv standalone code) answers exactly as the
 * schema compiled at run time, and is only used while it was made from the current schema file.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { generateConfigMeta, generateStandalone, schemaHash } from '../engine/validate/spec-schema-standalone.js';
import { AJV_VERSION, CONFIG_AJV_OPTIONS, META_SCHEMA_2020, configValidatorFor } from '../engine/validate/config-schema.js';
import { generateConfigValidators, generateRecordValidator, recordSchemaHash } from '../engine/validate/record-standalone.js';
import { RECORD_AJV_OPTIONS, RECORD_SCHEMA } from '../engine/validate/record.js';
import { sha256 } from '../engine/load/known-specs.js';
import { BUNDLED_SPECS_DIR, checkSpecs } from '../engine/index.js';
import { SPEC_SCHEMA_FILE, SPEC_SCHEMA_OPTIONS } from '../engine/validate/spec-schema.js';
import { packagePath } from '../engine/paths.js';

/**
 * A scratch folder inside the package (so generated code's require('ajv/dist/runtime/...') resolves),
 * removed afterwards whatever the test did.
 */
async function inPackageTempDir(prefix: string, body: (dir: string) => Promise<void>): Promise<void> {
  await mkdir(join(packagePath('node_modules'), '.cache'), { recursive: true });
  const dir = await mkdtemp(join(packagePath('node_modules'), '.cache', prefix));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('build-time spec schema validator', () => {
  it('gives the same verdicts and errors as the schema compiled at run time', async () => {
    await inPackageTempDir('standalone-', async (dir) => {
      const file = join(dir, 'validator.cjs');
      generateStandalone(file);
      // The generated code runs every pattern on the linear engine, required from beside it (dist/ has it: built by global setup).
      await copyFile(packagePath('dist', 'engine', 'validate', 'linear-regexp.cjs'), join(dir, 'linear-regexp.cjs'));
      const prebuilt = createRequire(import.meta.url)(file) as ValidateFunction & { schemaHash: string };
      const text = await readFile(SPEC_SCHEMA_FILE, 'utf8');
      expect(prebuilt.schemaHash).toBe(schemaHash(text));
      const compiled = new Ajv2020(SPEC_SCHEMA_OPTIONS).compile(JSON.parse(text) as object);
      const spec = parse(await readFile(new URL('./fixtures/self-contained-spec.yaml', import.meta.url), 'utf8')) as Record<string, any>;
      const variants: unknown[] = [
        spec,
        { ...spec, unknown_key: 1 },
        { ...spec, version: 3 },
        { ...spec, send: { ...spec.send, request: { ...spec.send.request, method: 'FETCH' } } },
        {},
        [],
      ];
      for (const v of variants) {
        expect(prebuilt(structuredClone(v))).toBe(compiled(structuredClone(v)));
        expect(prebuilt.errors ?? null).toEqual(compiled.errors ?? null);
      }
      expect(compiled(spec)).toBe(true);
      expect(compiled({ ...spec, unknown_key: 1 })).toBe(false);
    });
  });

  it('checks config schemas against the 2020-12 meta-schema exactly as ajv itself does (verdicts and messages)', async () => {
    await inPackageTempDir('config-meta-', async (dir) => {
      const file = join(dir, 'config-meta.validator.cjs');
      generateConfigMeta(file);
      const prebuilt = createRequire(import.meta.url)(file) as ValidateFunction & { ajvVersion: string };
      expect(prebuilt.ajvVersion).toBe(AJV_VERSION);
      const ajv = new Ajv2020({ ...CONFIG_AJV_OPTIONS });
      const own = ajv.getSchema(META_SCHEMA_2020)!;
      const schemas: unknown[] = [
        { type: 'object', properties: { a: { type: 'string', minLength: 1, secret: true } }, required: ['a'] },
        { type: 'object', properties: { a: { type: 'string', minLength: 'x' } } },
        { type: 'object', properties: { a: { type: 'strin' } } },
        { type: 'object', required: 'a', properties: {} },
        { type: 'object', properties: { a: { pattern: 7, enum: 'x', maxItems: -1 } } },
        { type: 'object', additionalProperties: 'no' },
        { type: 'object', properties: { a: { anyOf: [] } } },
        true,
        7,
      ];
      for (const schema of schemas) {
        const verdict = prebuilt(structuredClone(schema));
        expect(verdict).toBe(own(structuredClone(schema)));
        expect(ajv.errorsText(prebuilt.errors)).toBe(ajv.errorsText(own.errors));
      }
      expect(prebuilt(schemas[1])).toBe(false);
      expect(ajv.errorsText(prebuilt.errors)).toMatch(/minLength must be integer/);
    });
  });

  it('generates record and shipped config validators that answer as ajv compiled at run time (defaults filled alike)', async () => {
    await inPackageTempDir('record-', async (dir) => {
      await copyFile(packagePath('dist', 'engine', 'validate', 'linear-regexp.cjs'), join(dir, 'linear-regexp.cjs'));
      const recordFile = join(dir, 'record.validator.cjs');
      generateRecordValidator(recordFile);
      const prebuiltRecord = createRequire(import.meta.url)(recordFile) as ValidateFunction & { schemaHash: string };
      expect(prebuiltRecord.schemaHash).toBe(recordSchemaHash());
      const compiledRecord = new Ajv2020(RECORD_AJV_OPTIONS).compile(RECORD_SCHEMA);
      const base = { source_id: 's', vendor: 'v', name: 'n', enabled: true, config: {} };
      const records: unknown[] = [base, { ...base, enabled: 'yes' }, { ...base, field_mappings: { 'Data.x': 'a', __proto__x: 1 } }, { ...base, field_mappings: { '__proto__.x': 'a' } }, { ...base, extra: 1 }, {}, []];
      for (const r of records) {
        expect(prebuiltRecord(structuredClone(r))).toBe(compiledRecord(structuredClone(r)));
        expect(prebuiltRecord.errors ?? null).toEqual(compiledRecord.errors ?? null);
      }

      const { specs } = await checkSpecs([BUNDLED_SPECS_DIR]);
      const schemas = [...specs.values()].map((s) => s.configSchema as object);
      const configFile = join(dir, 'config.validators.cjs');
      generateConfigValidators(configFile, schemas);
      const prebuilt = createRequire(import.meta.url)(configFile) as Record<string, ValidateFunction> & { ajvVersion: string };
      expect(prebuilt.ajvVersion).toBe(AJV_VERSION);
      const configs: Record<string, unknown>[] = [
        { tenant_subdomain: 'mc-abc', client_id: 'id', client_secret: 's', event_definition_key: 'k' },
        { tenant_subdomain: 'bad host!', client_id: '', client_secret: 's', event_definition_key: 'a.b', account_id: 'x1' },
        { tenant_subdomain: 'mc-abc', client_id: 'id', client_secret: 's', data_extension_key: 'k', unknown: 1 },
        {},
      ];
      for (const schema of schemas) {
        const built = prebuilt[sha256(JSON.stringify(schema))]!;
        expect(built).toBeTypeOf('function');
        const compiled = configValidatorFor(schema as never);
        for (const c of configs) {
          const [a, b] = [structuredClone(c), structuredClone(c)];
          expect(built(a)).toBe(compiled(b));
          expect(built.errors ?? null).toEqual(compiled.errors ?? null);
          expect(a).toEqual(b); // the same defaults filled in
        }
      }
    });
  });
});
