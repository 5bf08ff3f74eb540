/**
 * Build step (`npm run build`, from spec-schema-standalone.ts): ajv standalone code for the validators a
 * fresh process otherwise compiles at its first record — the record schema's, and the config schema of
 * every shipped spec (specs/, examples/specs/) — so the first `createIntegration` does not pay ajv's
 * code generation (~40 ms). Each is used only while it matches: the record schema by its hash, config
 * validators by the hash of the config schema and the ajv version they were made with.
 */
import { writeFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standalone from 'ajv/dist/standalone/index.js';
import { ajvLinearRegExp } from '../compile/regex.js';
import { sha256 } from '../load/known-specs.js';
import { AJV_VERSION, newConfigAjv } from './config-schema.js';
import { RECORD_AJV_OPTIONS, RECORD_SCHEMA } from './record.js';

const standaloneCode = ((standalone as unknown as { default?: unknown }).default ?? standalone) as (ajv: Ajv2020, v: unknown) => string;
/** Patterns on the linear engine in generated code too: ajv inlines `regExp.code` for each one. */
export const standaloneRegExp = Object.assign((pattern: string, flags: string) => ajvLinearRegExp(pattern, flags), { code: 'require("./linear-regexp.cjs")' });

export const RECORD_VALIDATOR_FILE = 'record.validator.cjs';
export const CONFIG_VALIDATORS_FILE = 'config.validators.cjs';

export const recordSchemaHash = (): string => sha256(JSON.stringify(RECORD_SCHEMA));

export function generateRecordValidator(outFile: string): void {
  const ajv = new Ajv2020({ ...RECORD_AJV_OPTIONS, code: { source: true, regExp: standaloneRegExp } });
  const validate = ajv.compile(RECORD_SCHEMA);
  writeFileSync(outFile, `${standaloneCode(ajv, validate)}\nmodule.exports.schemaHash = ${JSON.stringify(recordSchemaHash())};\n`);
}

/** One module exporting a validator per distinct config schema, under the sha256 of its JSON. */
export function generateConfigValidators(outFile: string, schemas: readonly object[]): void {
  const ajv = newConfigAjv({ code: { source: true, regExp: standaloneRegExp } });
  const refs: Record<string, string> = {};
  for (const schema of schemas) {
    const key = sha256(JSON.stringify(schema));
    if (refs[key]) continue;
    ajv.addSchema(structuredClone(schema), key);
    refs[key] = key;
  }
  writeFileSync(outFile, `${standaloneCode(ajv, refs)}\nmodule.exports.ajvVersion = ${JSON.stringify(AJV_VERSION)};\n`);
}
