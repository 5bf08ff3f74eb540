/**
 * Integration records' `config` is checked against the spec's own config schema: compiled when the spec
 * is compiled (an invalid config schema is the author's load-time error), checked per record.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsImport from 'ajv-formats';
import { ajvLinearRegExp } from '../compile/regex.js';
import type { JsonSchema } from '../spec/types.js';

// ajv-formats is CommonJS: under NodeNext its default import is the module object or the plugin itself.
type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;
const formatsModule = addFormatsImport as unknown as FormatsPlugin & { default?: FormatsPlugin };
const addFormats: FormatsPlugin = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule;

let configAjv: Ajv2020 | undefined;
const configValidators = new Map<string, ValidateFunction>();

/**
 * One Ajv instance for every spec's config schema (an instance and its formats cost more than a
 * compile), and one compiled validator per distinct schema, reused when specs are loaded again.
 * Compiled at load, not at first use, so an invalid config schema is the author's load-time error.
 */
export function configValidatorFor(schema: JsonSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  const cached = configValidators.get(key);
  if (cached) return cached;
  if (!configAjv) {
    // useDefaults: a config field's `default` is what the record gets when it leaves the field out.
    // Config `pattern`s are written by spec authors and run on tenants' values: linear-time engine (regex.ts).
    configAjv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, addUsedSchema: false, code: { regExp: ajvLinearRegExp } });
    addFormats(configAjv);
    configAjv.addKeyword({ keyword: 'secret', schemaType: 'boolean' });
  }
  const validate = configAjv.compile(structuredClone(schema));
  configValidators.set(key, validate);
  return validate;
}
