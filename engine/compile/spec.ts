/**
 * Stage 3 of 4: compile a schema-valid spec into the program the engine runs. Every expression,
 * template and config schema is compiled here, once; every problem is collected with its location so
 * an author sees all of them in one run.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsImport from 'ajv-formats';
import type { Diagnostic } from '../errors.js';
import { diagnosticAt, type KeyPath, type SpecSource } from '../load/source.js';
import type {
  AuthStageSpec,
  ErrorRule,
  HttpMethod,
  IntegrationSpec,
  JsonSchema,
  Mapping,
  RequestSpec,
  StatusMatch,
  VendorErrorSpec,
} from '../spec/types.js';
import { compileExpression, ExpressionSyntaxError, type CompiledExpr } from './expression.js';
import { SPREAD_KEY, type CompiledMapping } from './mapping.js';
import { checkReferences, type ReferenceScope } from './references.js';
import { parseTemplate, TemplateSyntaxError, type TemplateContext, type TemplatePart } from './template.js';

// ajv-formats is CommonJS: under NodeNext its default import is the module object or the plugin itself.
type FormatsPlugin = (ajv: Ajv2020) => Ajv2020;
const formatsModule = addFormatsImport as unknown as FormatsPlugin & { default?: FormatsPlugin };
const addFormats: FormatsPlugin = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule;

export interface CompiledTemplate {
  source: string;
  context: TemplateContext;
  parts: TemplatePart[];
  exprs: CompiledExpr[];
}

export interface CompiledRequest {
  method: HttpMethod;
  url: CompiledTemplate;
  headers: { name: string; value: CompiledTemplate }[];
  body: CompiledMapping | undefined;
  encoding: 'json' | 'form';
}

export type RuleAction = ErrorRule['action'];

export interface CompiledRule {
  status?: (status: number) => boolean;
  codes?: ReadonlySet<string>;
  messageContains?: string;
  network?: true | ReadonlySet<string>;
  action: RuleAction;
  hint?: string;
  /** Where the rule came from, for messages: `send.errors[2]` or `default`. */
  origin: string;
}

export interface CompiledVendorError {
  code?: CompiledExpr;
  message?: CompiledExpr;
  retryAfter?: CompiledExpr;
}

export interface CompiledAuthStage {
  name: string;
  request: CompiledRequest;
  result: { name: string; expr: CompiledExpr }[];
  expiresIn?: CompiledExpr;
  defaultExpiresIn: number;
  cacheKey: string[];
  success: (status: number) => boolean;
  vendorError: CompiledVendorError;
  rules: CompiledRule[];
}

export interface CompiledCheck {
  that: CompiledExpr;
  message: string;
  hint?: string;
}

export interface CompiledSendStage {
  request: CompiledRequest;
  checks: CompiledCheck[];
  success: (status: number) => boolean;
  responseId?: CompiledExpr;
  keep: { name: string; expr: CompiledExpr }[];
  vendorError: CompiledVendorError;
  rules: CompiledRule[];
}

export interface CompiledPreset {
  name: string;
  title: string;
  events: Map<string, CompiledMapping>;
}

export interface CompiledSpec {
  file: string;
  spec: IntegrationSpec;
  vendor: string;
  title: string;
  version: string;
  configSchema: JsonSchema;
  configFields: ReadonlySet<string>;
  secretFields: ReadonlySet<string>;
  validateConfig: ValidateFunction;
  consentCategories: string[];
  allowedHosts: string[];
  timeouts: { connect_ms: number; response_ms: number };
  presets: Map<string, CompiledPreset>;
  defaultPreset: string | undefined;
  auth: CompiledAuthStage[];
  send: CompiledSendStage;
  /** Scope for expressions supplied later by integration records (field_mappings). */
  recordScope: ReferenceScope;
}

/** Defaults every spec inherits after its own rules: transient failures retry, other client errors fail. */
export const DEFAULT_RULES: CompiledRule[] = [
  { network: true, action: 'retry', origin: 'default' },
  { status: (s) => [408, 429, 500, 502, 503, 504].includes(s), action: 'retry', origin: 'default' },
  { status: () => true, action: 'fail', origin: 'default' },
];

export const DEFAULT_TIMEOUTS = { connect_ms: 5_000, response_ms: 30_000 };
const DEFAULT_EXPIRES_IN_S = 3_600;

export function statusMatcher(match: StatusMatch | StatusMatch[]): (status: number) => boolean {
  const list = Array.isArray(match) ? match : [match];
  const exact = new Set(list.filter((m): m is number => typeof m === 'number'));
  const classes = new Set(list.filter((m): m is string => typeof m === 'string').map((m) => Number(m[0])));
  return (s) => exact.has(s) || classes.has(Math.floor(s / 100));
}

export function configValidatorFor(schema: JsonSchema): ValidateFunction {
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  ajv.addKeyword({ keyword: 'secret', schemaType: 'boolean' });
  return ajv.compile(schema);
}

class Compiler {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly source: SpecSource) {}

  problem(path: KeyPath, message: string, offset?: number): void {
    this.diagnostics.push(diagnosticAt(this.source, path, message, offset === undefined ? {} : { offset }));
  }

  expr(path: KeyPath, src: string, scope: ReferenceScope, baseOffset = 0): CompiledExpr | undefined {
    try {
      const compiled = compileExpression(src);
      for (const p of checkReferences(compiled.ast, scope)) this.problem(path, p.message, baseOffset + p.position);
      return compiled;
    } catch (e) {
      if (e instanceof ExpressionSyntaxError) {
        this.problem(path, e.message, baseOffset + e.position);
        return undefined;
      }
      throw e;
    }
  }

  template(path: KeyPath, src: string, context: TemplateContext, scope: ReferenceScope): CompiledTemplate | undefined {
    let parts: TemplatePart[];
    try {
      parts = parseTemplate(src);
    } catch (e) {
      if (e instanceof TemplateSyntaxError) {
        this.problem(path, e.message, e.position);
        return undefined;
      }
      throw e;
    }
    const exprs: CompiledExpr[] = [];
    let ok = true;
    for (const part of parts) {
      if (!('expr' in part)) continue;
      const c = this.expr(path, part.expr, scope, part.offset);
      if (c) exprs.push(c);
      else ok = false;
    }
    return ok ? { source: src, context, parts, exprs } : undefined;
  }

  mapping(path: KeyPath, m: Mapping | Mapping[string], scope: ReferenceScope): CompiledMapping | undefined {
    if (typeof m === 'string') {
      const e = this.expr(path, m, scope);
      return e && { kind: 'expr', expr: e, path: path.join('.') };
    }
    if (m === null || typeof m !== 'object') return { kind: 'const', value: m };
    const entries: { key: string; spread: boolean; node: CompiledMapping }[] = [];
    let ok = true;
    for (const [key, value] of Object.entries(m)) {
      const spread = key === SPREAD_KEY;
      if (spread && typeof value !== 'string') {
        this.problem([...path, key], `"${SPREAD_KEY}" takes an expression that yields an object`);
        ok = false;
        continue;
      }
      const node = this.mapping([...path, key], value, scope);
      if (node) entries.push({ key, spread, node });
      else ok = false;
    }
    return ok ? { kind: 'object', entries } : undefined;
  }

  request(path: KeyPath, r: RequestSpec, scope: ReferenceScope): CompiledRequest | undefined {
    const url = this.template([...path, 'url'], r.url, 'url', scope);
    const headers: CompiledRequest['headers'] = [];
    let ok = !!url;
    for (const [name, value] of Object.entries(r.headers ?? {})) {
      const t = this.template([...path, 'headers', name], value, 'header', scope);
      if (t) headers.push({ name, value: t });
      else ok = false;
    }
    const body = r.body === undefined ? undefined : this.mapping([...path, 'body'], r.body, scope);
    if (r.body !== undefined && !body) ok = false;
    if (!ok || !url) return undefined;
    return { method: r.method, url, headers, body, encoding: r.encoding ?? 'json' };
  }

  vendorError(path: KeyPath, v: VendorErrorSpec | undefined, scope: ReferenceScope): CompiledVendorError {
    const out: CompiledVendorError = {};
    if (v?.code) out.code = this.expr([...path, 'code'], v.code, scope);
    if (v?.message) out.message = this.expr([...path, 'message'], v.message, scope);
    if (v?.retry_after) out.retryAfter = this.expr([...path, 'retry_after'], v.retry_after, scope);
    return out;
  }

  rules(path: KeyPath, rules: ErrorRule[] | undefined): CompiledRule[] {
    return (rules ?? []).map((r, i) => {
      const rule: CompiledRule = { action: r.action, origin: `${path.join('.')}[${i}]` };
      if (r.when.status !== undefined) rule.status = statusMatcher(r.when.status);
      if (r.when.code !== undefined) rule.codes = new Set((Array.isArray(r.when.code) ? r.when.code : [r.when.code]).map(String));
      if (r.when.message_contains !== undefined) rule.messageContains = r.when.message_contains.toLowerCase();
      if (r.when.network !== undefined) rule.network = r.when.network === true ? true : new Set(r.when.network || []);
      if (r.hint !== undefined) rule.hint = r.hint;
      if (Object.keys(r.when).length === 0) this.problem([...path, i, 'when'], 'a rule must match something (status, code, message_contains or network)');
      return rule;
    });
  }
}

function configFieldsOf(schema: JsonSchema): { fields: Set<string>; secrets: Set<string> } {
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const fields = new Set(Object.keys(props));
  const secrets = new Set(Object.entries(props).filter(([, p]) => p?.secret === true).map(([k]) => k));
  return { fields, secrets };
}

/** Compile a spec that passed the schema. Returns undefined (and diagnostics) when anything is wrong. */
export function compileSpec(source: SpecSource): { spec?: CompiledSpec; diagnostics: Diagnostic[] } {
  const c = new Compiler(source);
  const spec = source.value as IntegrationSpec;
  const { fields: configFields, secrets: secretFields } = configFieldsOf(spec.config);

  let validateConfig: ValidateFunction | undefined;
  try {
    validateConfig = configValidatorFor(spec.config);
  } catch (e) {
    c.problem(['config'], `config is not a valid JSON Schema: ${(e as Error).message}`);
  }
  const required = (spec.config.required ?? []) as string[];
  required.forEach((r, i) => {
    if (!configFields.has(r)) c.problem(['config', 'required', i], `required config field '${r}' is not declared in config.properties`);
  });

  const presetScope: ReferenceScope = { variables: new Set(['config', 'event']), configFields, authStages: new Map() };
  const presets = new Map<string, CompiledPreset>();
  let defaultPreset: string | undefined;
  for (const [name, p] of Object.entries(spec.presets ?? {})) {
    const events = new Map<string, CompiledMapping>();
    for (const [event, e] of Object.entries(p.events)) {
      const m = c.mapping(['presets', name, 'events', event, 'fields'], e.fields ?? {}, presetScope);
      if (m) events.set(event, m);
    }
    presets.set(name, { name, title: p.title ?? name, events });
    if (p.default) {
      if (defaultPreset) c.problem(['presets', name, 'default'], `only one preset can be the default ('${defaultPreset}' already is)`);
      else defaultPreset = name;
    }
  }
  if (!defaultPreset && presets.size === 1) defaultPreset = [...presets.keys()][0];

  const auth: CompiledAuthStage[] = [];
  const visible = new Map<string, ReadonlySet<string>>();
  const names = new Set<string>();
  (spec.auth ?? []).forEach((stage: AuthStageSpec, i) => {
    const path = ['auth', i];
    if (names.has(stage.name)) c.problem([...path, 'name'], `auth stage name '${stage.name}' is used twice`);
    names.add(stage.name);
    // Auth requests see config and earlier stages only: their result is cached per config, never per event.
    const reqScope: ReferenceScope = { variables: new Set(['config', 'auth']), configFields, authStages: new Map(visible) };
    const responseScope: ReferenceScope = { variables: new Set(['config']), configFields, authStages: new Map() };
    const request = c.request([...path, 'request'], stage.request, reqScope);
    const result = Object.entries(stage.result).map(([n, src]) => ({ name: n, expr: c.expr([...path, 'result', n], src, responseScope) }));
    const expiresIn = stage.expires_in ? c.expr([...path, 'expires_in'], stage.expires_in, responseScope) : undefined;
    stage.cache_key.forEach((k, j) => {
      if (!configFields.has(k)) c.problem([...path, 'cache_key', j], `cache_key names '${k}', which is not a config field`);
    });
    const rules = c.rules([...path, 'errors'], stage.errors);
    const vendorError = c.vendorError([...path, 'vendor_error'], stage.vendor_error, responseScope);
    visible.set(stage.name, new Set(Object.keys(stage.result)));
    if (request && result.every((r) => r.expr)) {
      auth.push({
        name: stage.name,
        request,
        result: result as { name: string; expr: CompiledExpr }[],
        ...(expiresIn ? { expiresIn } : {}),
        defaultExpiresIn: stage.default_expires_in ?? DEFAULT_EXPIRES_IN_S,
        cacheKey: stage.cache_key,
        success: statusMatcher(stage.success?.status ?? ['2xx']),
        vendorError,
        rules: [...rules, ...DEFAULT_RULES],
      });
    }
  });

  const send = spec.send;
  const sendScope: ReferenceScope = { variables: new Set(['config', 'auth', 'event', 'fields']), configFields, authStages: visible };
  const bodyScope: ReferenceScope = { variables: new Set(['config', 'event', 'fields']), configFields, authStages: new Map() };
  const responseScope: ReferenceScope = { variables: new Set(['config', 'event']), configFields, authStages: new Map() };
  const request = c.request(['send', 'request'], send.request, sendScope);
  const checks = (send.checks ?? []).map((ch, i) => ({ that: c.expr(['send', 'checks', i, 'that'], ch.that, bodyScope), message: ch.message, hint: ch.hint }));
  const responseId = send.success?.id ? c.expr(['send', 'success', 'id'], send.success.id, responseScope) : undefined;
  const keep = Object.entries(send.success?.keep ?? {}).map(([n, src]) => ({ name: n, expr: c.expr(['send', 'success', 'keep', n], src, responseScope) }));
  const vendorError = c.vendorError(['send', 'vendor_error'], send.vendor_error, responseScope);
  const rules = c.rules(['send', 'errors'], send.errors);
  if (auth.length === 0 && rules.some((r) => r.action === 'reauth')) {
    const i = rules.findIndex((r) => r.action === 'reauth');
    c.problem(['send', 'errors', i, 'action'], 'action reauth needs an auth stage, and this spec has none');
  }

  if (c.diagnostics.length || !request || !validateConfig) return { diagnostics: c.diagnostics };
  const compiled: CompiledSpec = {
    file: source.file,
    spec,
    vendor: spec.vendor,
    title: spec.title,
    version: spec.version,
    configSchema: spec.config,
    configFields,
    secretFields,
    validateConfig,
    consentCategories: spec.consent_categories ?? [],
    allowedHosts: spec.allowed_hosts,
    timeouts: { ...DEFAULT_TIMEOUTS, ...spec.timeouts },
    presets,
    defaultPreset,
    auth,
    send: {
      request,
      checks: checks as CompiledCheck[],
      success: statusMatcher(send.success?.status ?? ['2xx']),
      ...(responseId ? { responseId } : {}),
      keep: keep as { name: string; expr: CompiledExpr }[],
      vendorError,
      rules: [...rules, ...DEFAULT_RULES],
    },
    recordScope: { variables: new Set(['config', 'event', 'fields']), configFields, authStages: new Map() },
  };
  return { spec: compiled, diagnostics: [] };
}
