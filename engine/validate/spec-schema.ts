/**
 * Stage 2 of 4: check a parsed spec against schemas/integration-spec.schema.json, reporting every
 * violation with its `file:line:col`. CI runs the same schema through `signal-integrations validate`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { Diagnostic } from '../errors.js';
import { packagePath } from '../paths.js';
import { diagnosticAt, type KeyPath, type SpecSource } from '../load/source.js';
import { ajvLinearRegExp } from '../compile/regex.js';
import { prebuiltModule } from './prebuilt.js';
import { didYouMean } from '../compile/suggest.js';

let validator: ValidateFunction | undefined;

export const SPEC_SCHEMA_FILE = packagePath('schemas', 'integration-spec.schema.json');
// verbose: errors carry their parentSchema, whose properties name what an unknown key may have meant.
export const SPEC_SCHEMA_OPTIONS = { allErrors: true, strict: true, verbose: true } as const;

/**
 * Compiled once per process: from the standalone code `npm run build` generates next to this file
 * (spec-schema-standalone.ts) while it matches the schema file, else by ajv here.
 */
let schemaText: string | undefined;
/** The spec schema file's text, read once per process. */
export function specSchemaText(): string {
  return (schemaText ??= readFileSync(SPEC_SCHEMA_FILE, 'utf8'));
}

function specValidator(): ValidateFunction {
  if (!validator) {
    const text = specSchemaText();
    // The schema's patterns run on whatever a spec file holds: linear-time engine, like every other pattern.
    validator = prebuilt(text) ?? new Ajv2020({ ...SPEC_SCHEMA_OPTIONS, code: { regExp: ajvLinearRegExp } }).compile(JSON.parse(text) as object);
  }
  return validator;
}

function prebuilt(schemaText: string): ValidateFunction | undefined {
  return prebuiltModule<ValidateFunction>(import.meta.url, 'spec-schema.validator.cjs', 'schemaHash', createHash('sha256').update(schemaText).digest('hex'));
}

export function pointerToPath(pointer: string): KeyPath {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((seg) => (/^(0|[1-9][0-9]*)$/.test(seg) ? Number(seg) : seg));
}

/** Turn ajv's errors into located diagnostics; anyOf/oneOf noise collapses to one message per place. */
export function schemaDiagnostics(source: SpecSource, errors: ErrorObject[]): Diagnostic[] {
  const unions = new Set(errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.instancePath));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (unions.has(e.instancePath) && e.keyword !== 'anyOf' && e.keyword !== 'oneOf') continue;
    // A branch error below a failed union, e.g. `/send/x/type` under anyOf at `/send/x`, is noise as well.
    if ([...unions].some((u) => e.instancePath.startsWith(`${u}/`) && e.schemaPath.includes('anyOf'))) continue;
    const path = pointerToPath(e.instancePath);
    let d: Diagnostic;
    if (e.keyword === 'additionalProperties') {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      d = diagnosticAt(source, [...path, extra], `unknown key '${extra}'${didYouMean(extra, known)}`, { at: 'key' });
    } else if (e.keyword === 'required') {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      d = diagnosticAt(source, path, `missing required key '${missing}'`, { at: 'key' });
    } else if (e.keyword === 'anyOf' || e.keyword === 'oneOf') {
      d = diagnosticAt(source, path, unionMessage(e, errors));
    } else {
      const detail = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : '';
      d = diagnosticAt(source, path, `${e.message ?? 'is invalid'}${detail}`);
    }
    const k = `${d.line}:${d.col}:${d.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(d);
    }
  }
  return out;
}

type Schema = { [k: string]: unknown };
let rootSchema: Schema | undefined;

/** A noun phrase for what a schema accepts, read from the schema itself (no wording per key). */
export function describeSchema(schema: unknown, root: Schema = (rootSchema ??= JSON.parse(specSchemaText()) as Schema), depth = 0): string {
  if (typeof schema !== 'object' || schema === null) return 'anything';
  let s = schema as Schema;
  if (typeof s.$ref === 'string' && s.$ref.startsWith('#/')) {
    let target: unknown = root;
    for (const seg of pointerToPath(s.$ref.slice(1))) target = (target as Record<string | number, unknown> | undefined)?.[seg];
    s = (target as Schema | undefined) ?? {};
  }
  if (depth > 3) return typeof s.title === 'string' ? `a ${s.title.toLowerCase()}` : 'a value';
  const union = (s.anyOf ?? s.oneOf) as unknown[] | undefined;
  if (Array.isArray(union)) return union.map((b) => describeSchema(b, root, depth + 1)).join(' or ');
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ')}`;
  if ('const' in s) return JSON.stringify(s.const);
  const titled = (what: string) => (typeof s.title === 'string' ? `${/^[aeiou]/i.test(s.title) ? 'an' : 'a'} ${s.title.toLowerCase()} (${what})` : what);
  const range = (lo: unknown, hi: unknown) => (lo !== undefined && hi !== undefined ? ` from ${String(lo)} to ${String(hi)}` : lo !== undefined ? ` of at least ${String(lo)}` : hi !== undefined ? ` of at most ${String(hi)}` : '');
  switch (s.type) {
    case 'array':
      return `a list of ${describeSchema(s.items, root, depth + 1)}${typeof s.minItems === 'number' && s.minItems > 0 ? ` (at least ${s.minItems})` : ''}`;
    case 'integer':
      return `an integer${range(s.minimum, s.maximum)}`;
    case 'number':
      return `a number${range(s.minimum, s.maximum)}`;
    case 'string':
      return typeof s.pattern === 'string' ? `text matching ${s.pattern}` : titled('text');
    case 'object':
      return titled('a mapping');
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    default:
      return typeof s.title === 'string' ? `a ${s.title.toLowerCase()}` : 'a value';
  }
}

/**
 * What an anyOf/oneOf expected, from ajv's own error objects: each branch of the union (its schema, which
 * verbose errors carry) described, the value given, and — where a branch took the value's type but a
 * limit refused it (`maximum`, `pattern`, `enum`) — why that branch did not fit.
 */
function unionMessage(e: ErrorObject, errors: ErrorObject[]): string {
  const expected = Array.isArray(e.schema) ? e.schema.map((b) => describeSchema(b)).join(', or ') : describeSchema(e.parentSchema);
  const data = (e as { data?: unknown }).data;
  const got = data === null || ['string', 'number', 'boolean'].includes(typeof data) ? `; got ${typeof data === 'string' ? data : JSON.stringify(data)}` : Array.isArray(data) ? '; got a list' : typeof data === 'object' ? '; got a mapping' : '';
  const near = errors.find((b) => b.instancePath === e.instancePath && b.schemaPath.startsWith(`${e.schemaPath}/`) && !['type', 'anyOf', 'oneOf', 'enum', '$ref'].includes(b.keyword));
  return `must be ${expected}${got}${near ? ` (${near.message ?? 'invalid'})` : ''}`;
}

export function validateSpecShape(source: SpecSource): Diagnostic[] {
  const validate = specValidator();
  if (validate(source.value)) return [];
  return schemaDiagnostics(source, validate.errors ?? []);
}
