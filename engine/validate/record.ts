/**
 * Integration records: the Management API's body (source_id, vendor, name, enabled, config,
 * consent_categories) plus preset, events, field_mappings, retry and rate_limit. A record is checked
 * against the generic record schema and its spec's config schema; every bad field is listed in one
 * error, by name and rule only — a value is never echoed, so a secret cannot leak through a message.
 */
import { createHash } from 'node:crypto';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { formatProblem, RecordError, type InputProblem } from '../errors.js';
import type { CompiledPreset, CompiledSpec } from '../compile/spec.js';
import { checkExpression } from '../compile/call-checks.js';
import { compileExpression, ExpressionSyntaxError, type CompiledExpr } from '../compile/expression.js';
import { ajvLinearRegExp } from '../compile/regex.js';
import { prebuiltModule } from './prebuilt.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../policy/retry-delay.js';

export interface IntegrationRecord {
  /** Stable id the Management API assigns: what the fleet keys queues, counts and metrics by. */
  id?: string;
  source_id: string;
  vendor: string;
  name: string;
  enabled: boolean;
  config: Record<string, unknown>;
  consent_categories?: string[];
  preset?: string;
  events?: string[];
  field_mappings?: Record<string, string | null>;
  retry?: { max_attempts?: number; max_elapsed_ms?: number; queue?: { max_attempts?: number; backoff_ms?: number; max_backoff_ms?: number } };
  rate_limit?: { requests_per_minute: number };
}

export const RECORD_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['source_id', 'vendor', 'name', 'enabled', 'config'],
  properties: {
    // Ids become Redis key parts inside a {hash tag}: no braces, no spaces, bounded.
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' },
    source_id: { type: 'string', minLength: 1 },
    vendor: { type: 'string', minLength: 1 },
    name: { type: 'string', minLength: 1 },
    enabled: { type: 'boolean' },
    config: { type: 'object' },
    consent_categories: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    preset: { type: 'string', minLength: 1 },
    events: { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true },
    field_mappings: {
      type: 'object',
      propertyNames: { pattern: '^[^.]+(\\.[^.]+)*$', not: { pattern: '(^|\\.)(__proto__|constructor|prototype)(\\.|$)' } },
      additionalProperties: { type: ['string', 'null'] },
    },
    retry: {
      type: 'object',
      additionalProperties: false,
      properties: {
        max_attempts: { type: 'integer', minimum: 1, maximum: 20 },
        max_elapsed_ms: { type: 'integer', minimum: 0, maximum: 3_600_000 },
        // Queue attempts of the fleet (`worker`): one queue attempt = one delivery with the retries above.
        queue: {
          type: 'object',
          additionalProperties: false,
          properties: {
            max_attempts: { type: 'integer', minimum: 1, maximum: 20 },
            backoff_ms: { type: 'integer', minimum: 0, maximum: 86_400_000 },
            max_backoff_ms: { type: 'integer', minimum: 0, maximum: 7 * 86_400_000 },
          },
        },
      },
    },
    rate_limit: {
      type: 'object',
      additionalProperties: false,
      required: ['requests_per_minute'],
      properties: { requests_per_minute: { type: 'number', exclusiveMinimum: 0, maximum: 1_000_000 } },
    },
  },
} as const;

let recordShape: ValidateFunction | undefined;

/** The validator `npm run build` generated (record-standalone.ts) while it matches RECORD_SCHEMA; else none. */
function prebuiltRecordValidator(): ValidateFunction | undefined {
  return prebuiltModule<ValidateFunction>(import.meta.url, 'record.validator.cjs', 'schemaHash', createHash('sha256').update(JSON.stringify(RECORD_SCHEMA)).digest('hex'));
}

export const RECORD_AJV_OPTIONS = { allErrors: true, strict: true } as const;

function validateRecordShape(input: unknown): { ok: boolean; errors: ErrorObject[] } {
  recordShape ??= prebuiltRecordValidator() ?? new Ajv2020({ ...RECORD_AJV_OPTIONS, validateSchema: false, code: { regExp: ajvLinearRegExp } }).compile(RECORD_SCHEMA);
  const ok = recordShape(input);
  return { ok, errors: recordShape.errors ?? [] };
}

/** `config.account_id: must match pattern "^[0-9]+$"`: the place and the rule, never the value. */
export function describeErrors(prefix: string, errors: readonly ErrorObject[]): InputProblem[] {
  const out = new Map<string, InputProblem>();
  const add = (path: string, keyword: string, message: string): void => {
    const p = { path: path.replace(/^record\.?/, ''), keyword, message };
    const key = formatProblem(p);
    if (!out.has(key)) out.set(key, p);
  };
  for (const e of errors) {
    if (e.keyword === 'if' || (e.propertyName !== undefined && e.keyword !== 'propertyNames')) continue; // the propertyNames error says it
    const at = (prefix + e.instancePath.replace(/\//g, '.')).replace(/^\./, '') || 'record';
    if (e.keyword === 'required') add(`${at ? `${at}.` : ''}${(e.params as { missingProperty: string }).missingProperty}`, e.keyword, 'is required');
    else if (e.keyword === 'additionalProperties') add(at, e.keyword, `unknown field '${(e.params as { additionalProperty: string }).additionalProperty}'`);
    else if (e.keyword === 'propertyNames') add(at, e.keyword, `'${String((e.params as { propertyName?: string }).propertyName ?? '')}' is not a dotted path such as Data.email (and may not name __proto__, constructor or prototype)`);
    else add(at, e.keyword, e.message ?? 'is invalid');
  }
  return [...out.values()];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface CheckedRecord {
  record: IntegrationRecord;
  spec: CompiledSpec;
  forwarded: ReadonlySet<string> | undefined;
  presetEvents: CompiledPreset | undefined;
  consent: string[];
  overrides: { path: string[]; expr: CompiledExpr | undefined }[];
  retry: RetryPolicy;
}

/** The record's in-process retry settings (its `queue` part is the fleet's, read by the worker). */
function inProcessRetry(retry: IntegrationRecord['retry']): Partial<RetryPolicy> {
  const { queue: _queue, ...rest } = retry ?? {};
  return rest;
}

/** Batch limits the spec reads from the config (`max_items: $config.plan_max_items`): each a whole number of at least 1. */
function batchLimitProblems(spec: CompiledSpec, config: Record<string, unknown>): InputProblem[] {
  return Object.entries(spec.send.batch?.limitFields ?? {}).flatMap(([key, field]) => {
    const v = config[field];
    return typeof v === 'number' && Number.isInteger(v) && v >= 1 ? [] : [{ path: `config.${field}`, keyword: 'batch_limit', message: `is send.batch.${key} for this record, so it must be a whole number of at least 1` }];
  });
}

/** Check a record against its spec; throws one RecordError listing every problem. */
export function checkRecord(input: unknown, specs: ReadonlyMap<string, CompiledSpec>): CheckedRecord {
  const name = typeof (input as { name?: unknown })?.name === 'string' ? `'${(input as { name: string }).name}'` : '';
  const subject = `integration record ${name}`.trim() + ' is invalid';
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RecordError(subject, [{ path: '', keyword: 'type', message: 'an integration record must be a JSON object' }]);
  const problems: InputProblem[] = [];
  const shape = validateRecordShape(input);
  if (!shape.ok) problems.push(...describeErrors('', shape.errors));
  // The config is validated on a copy, so the schema's `default`s fill it without touching the caller's record.
  const original = input as IntegrationRecord;
  const record: IntegrationRecord = isObject(original.config) ? { ...original, config: structuredClone(original.config) } : original;
  const spec = typeof record.vendor === 'string' ? specs.get(record.vendor) : undefined;
  if (typeof record.vendor === 'string' && !spec) problems.push({ path: 'vendor', keyword: 'spec', message: `no spec for '${record.vendor}' (available: ${[...specs.keys()].join(', ') || 'none'})` });
  let preset: CheckedRecord['presetEvents'];
  const overrides: CheckedRecord['overrides'] = [];
  if (spec) {
    if (isObject(record.config) && !spec.validateConfig(record.config)) {
      problems.push(...describeErrors('config', spec.validateConfig.errors ?? []));
    }
    if (isObject(record.config)) problems.push(...batchLimitProblems(spec, record.config));
    const presetName = typeof record.preset === 'string' ? record.preset : spec.defaultPreset;
    preset = presetName ? spec.presets.get(presetName) : undefined;
    if (typeof record.preset === 'string' && !preset) {
      problems.push({ path: 'preset', keyword: 'preset', message: `'${record.preset}' is not a preset of ${spec.vendor} (available: ${[...spec.presets.keys()].join(', ') || 'none'})` });
    }
    for (const [path, src] of Object.entries(record.field_mappings ?? {})) {
      if (typeof src !== 'string') {
        overrides.push({ path: path.split('.'), expr: undefined }); // null removes the field
        continue;
      }
      try {
        const expr = compileExpression(src, spec.functions);
        for (const p of checkExpression(expr.ast, spec.recordScope, spec.functions)) problems.push({ path: `field_mappings.${path}`, keyword: 'expression', message: `${p.message} (at character ${p.position + 1})` });
        overrides.push({ path: path.split('.'), expr });
      } catch (e) {
        if (!(e instanceof ExpressionSyntaxError)) throw e;
        problems.push({ path: `field_mappings.${path}`, keyword: 'expression', message: `${e.message} (at character ${e.position + 1})` });
      }
    }
  }
  if (problems.length || !spec) throw new RecordError(subject, problems);

  const forwardedList = record.events ?? (preset ? [...preset.events.keys()] : undefined);
  return {
    record,
    spec,
    forwarded: forwardedList && new Set(forwardedList),
    presetEvents: preset,
    consent: record.consent_categories ?? spec.consentCategories,
    overrides,
    retry: { ...DEFAULT_RETRY_POLICY, ...inProcessRetry(record.retry) },
  };
}
