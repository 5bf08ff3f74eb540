/**
 * Integration records' `config` is checked against the spec's own config schema: compiled when the spec
 * is compiled (an invalid config schema is the author's load-time error), checked per record.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Ajv2020, type Options, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsImport from 'ajv-formats';
import { ajvLinearRegExp } from '../compile/regex.js';
import { prebuiltModule } from './prebuilt.js';
import type { JsonSchema } from '../spec/types.js';

// ajv-formats is CommonJS: under NodeNext its default import is the module object or the plugin itself.
type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;
const formatsModule = addFormatsImport as unknown as FormatsPlugin & { default?: FormatsPlugin };
const addFormats: FormatsPlugin = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule;

let configAjv: Ajv2020 | undefined;

/** An Ajv for config schemas: the options, formats and `secret` keyword every config validator is compiled with (here and at build time). */
export function newConfigAjv(extra: Pick<Options, 'validateSchema' | 'code'>): Ajv2020 {
  const ajv = new Ajv2020({ ...CONFIG_AJV_OPTIONS, ...extra });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' });
  return ajv;
}
const configValidators = new Map<string, ValidateFunction>();

export const CONFIG_META_FILE = 'config-meta.validator.cjs';
export const META_SCHEMA_2020 = 'https://json-schema.org/draft/2020-12/schema';
// useDefaults: a config field's `default` is what the record gets when it leaves the field out.
export const CONFIG_AJV_OPTIONS = { allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, addUsedSchema: false } as const;
export const AJV_VERSION = (createRequire(import.meta.url)('ajv/package.json') as { version: string }).version;

/**
 * The meta-schema's validator generated at build time (spec-schema-standalone.ts), while it was made
 * by this very ajv; undefined when not built (tests run from sources): then ajv compiles the
 * meta-schema itself, as it always did.
 */
let prebuiltMeta: ValidateFunction | null | undefined;
const configMetaValidator = () => (prebuiltMeta ??= prebuiltModule<ValidateFunction>(import.meta.url, CONFIG_META_FILE, 'ajvVersion', AJV_VERSION) ?? null) ?? undefined;

let prebuiltConfig: Record<string, ValidateFunction> | null | undefined;
const prebuiltConfigValidators = () => (prebuiltConfig ??= prebuiltModule<Record<string, ValidateFunction>>(import.meta.url, 'config.validators.cjs', 'ajvVersion', AJV_VERSION) ?? null) ?? undefined;

/**
 * One Ajv instance for every spec's config schema (an instance and its formats cost more than a
 * compile), and one compiled validator per distinct schema, reused when specs are loaded again.
 * Compiled at load, not at first use, so an invalid config schema is the author's load-time error.
 */
export function configValidatorFor(schema: JsonSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = configValidators.get(key);
  if (cached) return cached;
  // A shipped spec's config schema: its validator was generated at build time (record-standalone.ts).
  const built = prebuiltConfigValidators()?.[createHash('sha256').update(key).digest('hex')];
  if (built) {
    configValidators.set(key, built);
    return built;
  }
  const meta = (schema as { $schema?: unknown }).$schema === undefined || (schema as { $schema?: unknown }).$schema === META_SCHEMA_2020 ? configMetaValidator() : undefined;
  if (!configAjv) {
    // Config `pattern`s are written by spec authors and run on tenants' values: linear-time engine (regex.ts).
    // With the prebuilt meta-schema validator, ajv need not compile the meta-schema to check each schema.
    configAjv = newConfigAjv({ ...(meta ? { validateSchema: false } : {}), code: { regExp: ajvLinearRegExp } });
  }
  if (configAjv.opts.validateSchema === false) {
    // What ajv's own check would throw, word for word.
    if (!meta) configAjv.validateSchema(schema as object, true);
    else if (!meta(schema)) throw new Error(`schema is invalid: ${configAjv.errorsText(meta.errors)}`);
  }
  const validate = configAjv.compile(structuredClone(schema));
  configValidators.set(key, validate);
  return validate;
}

/** configValidatorFor at the first validation, for a schema known to compile (load/known-specs.ts). */
export function lazyConfigValidator(schema: JsonSchema): ValidateFunction {
  let compiled: ValidateFunction | undefined;
  const validate = ((data: unknown) => {
    compiled ??= configValidatorFor(schema);
    const ok = compiled(data);
    validate.errors = compiled.errors;
    return ok;
  }) as ValidateFunction;
  return validate;
}
