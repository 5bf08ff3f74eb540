/**
 * Build step (`npm run build`): the spec schema's validator as ajv standalone code, so a fresh process
 * validates specs without compiling the schema (tens of ms at start-up). The generated module records
 * the hash of the schema it was made from; spec-schema.ts uses it only while that hash matches the
 * schema file, and otherwise compiles the schema as before.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import standalone from 'ajv/dist/standalone/index.js';
import { SPEC_SCHEMA_FILE, SPEC_SCHEMA_OPTIONS } from './spec-schema.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AJV_VERSION, CONFIG_AJV_OPTIONS, CONFIG_META_FILE, META_SCHEMA_2020 } from './config-schema.js';
import { CONFIG_VALIDATORS_FILE, RECORD_VALIDATOR_FILE, generateConfigValidators, generateRecordValidator, standaloneRegExp } from './record-standalone.js';
import { checkSpecs } from '../load/specs.js';
import { BUNDLED_SPECS_DIR, packagePath } from '../paths.js';

export const STANDALONE_FILE = 'spec-schema.validator.cjs';

export function schemaHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function generateStandalone(outFile: string): void {
  const text = readFileSync(SPEC_SCHEMA_FILE, 'utf8');
  const ajv = new Ajv2020({ ...SPEC_SCHEMA_OPTIONS, code: { source: true, regExp: standaloneRegExp } });
  const validate = ajv.compile(JSON.parse(text) as object);
  // CommonJS under NodeNext: the default import is the module object or the function itself.
  const code = ((standalone as unknown as { default?: unknown }).default ?? standalone) as (ajv: Ajv2020, v: unknown) => string;
  writeFileSync(outFile, `${code(ajv, validate)}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash(text))};\n`);
}

/**
 * The JSON Schema 2020-12 meta-schema's validator, for checking spec authors' config schemas: compiling
 * it is most of the first Engine.load() in a fresh process (~50–90 ms). It records the ajv version it
 * was made with; config-schema.ts uses it only under that same version.
 */
export function generateConfigMeta(outFile: string): void {
  const ajv = new Ajv2020({ ...CONFIG_AJV_OPTIONS, code: { source: true } });
  const validate = ajv.getSchema(META_SCHEMA_2020)!;
  const code = ((standalone as unknown as { default?: unknown }).default ?? standalone) as (ajv: Ajv2020, v: unknown) => string;
  writeFileSync(outFile, `${code(ajv, validate)}\nmodule.exports.ajvVersion = ${JSON.stringify(AJV_VERSION)};\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
  generateStandalone(here(STANDALONE_FILE));
  generateConfigMeta(here(CONFIG_META_FILE));
  generateRecordValidator(here(RECORD_VALIDATOR_FILE));
  // The shipped specs' config schemas (read with the validators just written).
  const { specs } = await checkSpecs([BUNDLED_SPECS_DIR, packagePath('examples', 'specs')]);
  generateConfigValidators(here(CONFIG_VALIDATORS_FILE), [...specs.values()].map((s) => s.configSchema as object));
}
