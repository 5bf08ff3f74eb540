/**
 * Stage 3 of 4: compile a schema-valid spec into the program the engine runs. Every expression,
 * template and config schema is compiled here, once; every problem is collected with its location so
 * an author sees all of them in one run.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
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
import { DEFAULT_FUNCTIONS, type FunctionSet } from './builtins.js';
import { checkExpression } from './call-checks.js';
import { compileExpression, ExpressionSyntaxError, type CompiledExpr } from './expression.js';
import { FORBIDDEN_SEGMENTS, SPREAD_KEY, type CompiledMapping } from './mapping.js';
import { schemaPatternProblems } from './regex.js';
import { configValidatorFor, lazyConfigValidator } from '../validate/config-schema.js';
import { splitHostEntry } from '../policy/hosts.js';

import { checkReferences, type ReferenceScope } from './references.js';
import { optionalPartProblems, type OptionalWhere } from './optional-parts.js';
import { BATCH_DEFAULT_RULES, compileBatch, splitRuleProblems } from './batch.js';
import { parseTemplate, TemplateSyntaxError, type TemplateContext, type TemplatePart } from './template.js';

export type * from './program.js';
import type {
  CompiledAuthStage,
  CompiledCheck,
  CompiledPreset,
  CompiledRequest,
  CompiledRule,
  CompiledSpec,
  CompiledTemplate,
  CompiledVendorError,
} from './program.js';
import { DEFAULT_RULES, DEFAULT_TIMEOUTS } from './program.js';

/** At most this many config fields per spec (see docs/spec-language.md, "Limits"). */
export const MAX_CONFIG_FIELDS = 1_000;

export function statusMatcher(match: StatusMatch | StatusMatch[]): (status: number) => boolean {
  const list = Array.isArray(match) ? match : [match];
  const exact = new Set(list.filter((m): m is number => typeof m === 'number'));
  const classes = new Set(list.filter((m): m is string => typeof m === 'string').map((m) => Number(m[0])));
  return (s) => exact.has(s) || classes.has(Math.floor(s / 100));
}

export class Compiler {
  readonly diagnostics: Diagnostic[] = [];
  constructor(readonly source: SpecSource, readonly functions: FunctionSet) {}

  problem(path: KeyPath, message: string, offset?: number): void {
    this.diagnostics.push(diagnosticAt(this.source, path, message, offset === undefined ? {} : { offset }));
  }

  expr(path: KeyPath, src: string, scope: ReferenceScope, baseOffset = 0): CompiledExpr | undefined {
    try {
      const compiled = compileExpression(src, this.functions);
      for (const p of checkExpression(compiled.ast, scope, this.functions)) this.problem(path, p.message, baseOffset + p.position);
      return compiled;
    } catch (e) {
      if (e instanceof ExpressionSyntaxError) {
        this.problem(path, e.message, baseOffset + e.position);
        return undefined;
      }
      throw e;
    }
  }

  template(path: KeyPath, src: string, context: TemplateContext, scope: ReferenceScope, where?: OptionalWhere): CompiledTemplate | undefined {
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
    for (const p of optionalPartProblems(parts, where ?? context)) {
      this.problem(path, p.message, p.offset);
      ok = false;
    }
    for (const part of parts) {
      if (!('expr' in part)) continue;
      const c = this.expr(path, part.expr, scope, part.offset);
      if (c) exprs.push(c);
      else ok = false;
    }
    // A URL starts with its scheme, or with a placeholder that yields a whole origin followed by the path.
    const origin = context === 'url' && parts[0] !== undefined && 'expr' in parts[0];
    if (context === 'url' && !origin && !/^https?:\/\//i.test(src)) {
      // Most often a host written without its scheme: say what to write.
      const fix = /^[a-z][a-z0-9+.-]*:/i.test(src) ? 'requests go to absolute http(s) URLs' : `write https://${src.replace(/^\/+/, '')}`;
      this.problem(path, `the URL has no scheme: ${fix} (a URL starts with https:// or http://, or with a placeholder that yields a whole origin such as {$auth.login.instance_url})`);
      ok = false;
    }
    if (origin) {
      const next = parts[1];
      if (next && !('text' in next && /^[/?]/.test(next.text))) {
        this.problem(path, 'an origin placeholder at the start of a URL must be followed by the path (/...) or nothing', 'text' in parts[0]! ? 0 : (parts[0] as { offset: number }).offset);
        ok = false;
      }
    }
    return ok ? { source: src, context, origin, parts, exprs } : undefined;
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
      if (FORBIDDEN_SEGMENTS.has(key)) {
        this.problem([...path, key], `mapping key '${key}' names a prototype property; bodies are plain objects, so it cannot be mapped`);
        ok = false;
        continue;
      }
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

  request(path: KeyPath, r: RequestSpec, scope: ReferenceScope, bodyScope: ReferenceScope = scope): CompiledRequest | undefined {
    const url = this.template([...path, 'url'], r.url, 'url', scope);
    const headers: CompiledRequest['headers'] = [];
    let ok = !!url;
    for (const [name, value] of Object.entries(r.headers ?? {})) {
      const t = this.template([...path, 'headers', name], value, 'header', scope);
      if (t) headers.push({ name, value: t });
      else ok = false;
    }
    const body = r.body === undefined ? undefined : this.mapping([...path, 'body'], r.body, bodyScope);
    if (r.body !== undefined && !body) ok = false;
    let method: HttpMethod | CompiledTemplate | undefined = r.method as HttpMethod;
    if (r.method.includes('{')) method = this.template([...path, 'method'], r.method, 'header', scope, 'method');
    if (!ok || !url || !method) return undefined;
    const hasContentType = headers.some((h) => h.name.toLowerCase() === 'content-type');
    return { method, url, headers, body, encoding: r.encoding ?? 'json', hasContentType };
  }

  vendorError(path: KeyPath, v: VendorErrorSpec | undefined, bodyScope: ReferenceScope): CompiledVendorError {
    // Vendor error expressions read the answer's headers too, as $headers, and its WWW-Authenticate challenge as $challenge.
    const scope: ReferenceScope = { ...bodyScope, variables: new Set([...bodyScope.variables, 'headers', 'challenge']) };
    const out: CompiledVendorError = {};
    if (v?.retry_after_header) out.retryAfterHeader = { name: v.retry_after_header.name.toLowerCase(), format: v.retry_after_header.format ?? 'seconds' };
    if (v?.code) out.code = this.expr([...path, 'code'], v.code, scope);
    if (v?.message) out.message = this.expr([...path, 'message'], v.message, scope);
    if (v?.retry_after) out.retryAfter = this.expr([...path, 'retry_after'], v.retry_after, scope);
    return out;
  }

  rules(path: KeyPath, rules: ErrorRule[] | undefined, opts: { reauth: boolean } = { reauth: true }): CompiledRule[] {
    return (rules ?? []).map((r, i) => {
      // Rules that could never match are mistakes: say so instead of silently ignoring them.
      if (r.when.network !== undefined && (r.when.status !== undefined || r.when.code !== undefined)) {
        this.problem([...path, i, 'when'], 'a rule matches either a network error or a vendor answer (status, code), not both: split it in two');
      }
      if (r.when.network === false) this.problem([...path, i, 'when', 'network'], 'network: false matches nothing; leave it out');
      if (r.action === 'reauth' && !opts.reauth) this.problem([...path, i, 'action'], 'reauth is for requests made with a token: on an auth stage it re-runs the earlier stages, and the first stage has none');
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

/**
 * `client_auth`: the id and secret are expressions over what the auth request sees; the engine writes the
 * `Authorization` header (basic) or the form fields (post) itself, so the request may not write them too.
 */
function compileClientAuth(c: Compiler, path: KeyPath, stage: AuthStageSpec, scope: ReferenceScope, secretFields: ReadonlySet<string>): CompiledAuthStage['clientAuth'] {
  const ca = stage.client_auth!;
  const id = c.expr([...path, 'id'], ca.id, scope);
  const secret = c.expr([...path, 'secret'], ca.secret, scope);
  let ok = !!id && !!secret;
  const header = Object.keys(stage.request.headers ?? {}).find((h) => h.toLowerCase() === 'authorization');
  if (ca.method === 'basic' && header) {
    c.problem(['auth', path[1]!, 'request', 'headers', header], 'client_auth: basic writes the Authorization header itself; remove this header (or the client_auth)');
    ok = false;
  }
  if (ca.method === 'post') {
    if ((stage.request.encoding ?? 'json') !== 'form') {
      c.problem([...path, 'method'], 'client_auth: post puts client_id and client_secret in a form body (RFC 6749 §2.3.1): set request.encoding: form');
      ok = false;
    }
    const body = stage.request.body;
    for (const k of ['client_id', 'client_secret']) {
      if (body && typeof body === 'object' && k in body) {
        c.problem(['auth', path[1]!, 'request', 'body', k], `client_auth: post writes ${k} itself; remove it from the body`);
        ok = false;
      }
    }
  }
  // The secret must be a secret config field: otherwise previews, outcomes and errors would show it.
  const m = /^\s*\$config\s*\.\s*([A-Za-z_]\w*)\s*$/.exec(ca.secret);
  if (m && !secretFields.has(m[1]!)) {
    c.problem([...path, 'secret'], `client_auth.secret reads $config.${m[1]}, which is not declared secret: true in config (it would be shown in previews and errors)`);
    ok = false;
  }
  return ok && id && secret ? { method: ca.method, id, secret } : undefined;
}

/**
 * Whether the send or poll requests read `$auth.<stage>` themselves. Conservative: any `$auth` not followed
 * by a plain `.name` counts as reading every stage.
 */
function readsStage(spec: IntegrationSpec, stage: string): boolean {
  const reqs: (RequestSpec | undefined)[] = [spec.send.request, spec.send.batch?.poll?.status, spec.send.batch?.poll?.results];
  const text = JSON.stringify(reqs.map((r) => r && { method: r.method, url: r.url, headers: r.headers }));
  for (const m of text.matchAll(/\$auth\b(\s*\.\s*([A-Za-z_][A-Za-z0-9_]*))?/g)) {
    if (!m[2] || m[2] === stage) return true;
  }
  return false;
}

function configFieldsOf(schema: JsonSchema): { fields: Set<string>; secrets: Set<string> } {
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  const fields = new Set(Object.keys(props));
  const secrets = new Set(Object.entries(props).filter(([, p]) => p?.secret === true).map(([k]) => k));
  return { fields, secrets };
}

/** Compile a spec that passed the schema. Returns undefined (and diagnostics) when anything is wrong. */
/**
 * `knownValid`: the build compiled this very spec without a diagnostic (load/known-specs.ts), so its
 * config schema's checks are skipped and its validator is compiled when a record first needs it.
 */
export function compileSpec(source: SpecSource, opts: { knownValid?: boolean; functions?: FunctionSet } = {}): { spec?: CompiledSpec; diagnostics: Diagnostic[] } {
  const c = new Compiler(source, opts.functions ?? DEFAULT_FUNCTIONS);
  const spec = source.value as IntegrationSpec;
  const { fields: configFields, secrets: secretFields } = configFieldsOf(spec.config);

  let validateConfig: ValidateFunction | undefined;
  const fieldCount = Object.keys(spec.config.properties ?? {}).length;
  // ajv generates code per field: 30,000 fields took seconds to compile. Real configs have a handful.
  const tooMany = fieldCount > MAX_CONFIG_FIELDS;
  if (tooMany) c.problem(['config', 'properties'], `config declares ${fieldCount} fields; a spec may declare at most ${MAX_CONFIG_FIELDS}`);
  if (opts.knownValid) validateConfig = lazyConfigValidator(spec.config);
  else {
    const refused = tooMany ? [] : schemaPatternProblems(spec.config, ['config']);
    for (const p of refused) c.problem(p.path, p.message);
    try {
      if (!tooMany && !refused.length) validateConfig = configValidatorFor(spec.config);
    } catch (e) {
      c.problem(['config'], `config is not a valid JSON Schema: ${(e as Error).message}`);
    }
  }
  const required = (spec.config.required ?? []) as string[];
  required.forEach((r, i) => {
    if (!configFields.has(r)) c.problem(['config', 'required', i], `required config field '${r}' is not declared in config.properties`);
  });

  (spec.allowed_hosts ?? []).forEach((entry, i) => {
    const { port } = splitHostEntry(entry);
    if (port !== undefined && (port < 1 || port > 65535)) c.problem(['allowed_hosts', i], `allowed_hosts entry '${entry}' names port ${port}; a port is 1 to 65535`);
  });

  const rateLimitScope = spec.rate_limit?.scope ?? [];
  rateLimitScope.forEach((k, i) => {
    if (!configFields.has(k)) c.problem(['rate_limit', 'scope', i], `rate_limit.scope names '${k}', which is not a config field`);
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
    const reqScope: ReferenceScope = { variables: new Set(['config', 'auth']), configFields, authStages: new Map(visible), noInput: true };
    const responseScope: ReferenceScope = { variables: new Set(['config']), configFields, authStages: new Map() };
    const request = c.request([...path, 'request'], stage.request, reqScope);
    const clientAuth = stage.client_auth ? compileClientAuth(c, [...path, 'client_auth'], stage, reqScope, secretFields) : undefined;
    const result = Object.entries(stage.result).map(([n, src]) => ({ name: n, expr: c.expr([...path, 'result', n], src, responseScope) }));
    const expiresIn = stage.expires_in ? c.expr([...path, 'expires_in'], stage.expires_in, responseScope) : undefined;
    stage.cache_key.forEach((k, j) => {
      if (!configFields.has(k)) c.problem([...path, 'cache_key', j], `cache_key names '${k}', which is not a config field`);
    });
    // On a later stage, reauth drops the earlier stages' results and runs the chain again (its token may be stale).
    const rules = c.rules([...path, 'errors'], stage.errors, { reauth: i > 0 });
    (stage.public ?? []).forEach((o, j) => {
      if (!(o in stage.result)) c.problem([...path, 'public', j], `public names '${o}', which is not an output in result`);
    });
    const vendorError = c.vendorError([...path, 'vendor_error'], stage.vendor_error, responseScope);
    visible.set(stage.name, new Set(Object.keys(stage.result)));
    if (request && result.every((r) => r.expr) && (!stage.client_auth || clientAuth)) {
      auth.push({
        name: stage.name,
        request,
        ...(clientAuth ? { clientAuth } : {}),
        ...(stage.token_type !== undefined ? { tokenType: stage.token_type } : {}),
        result: result as { name: string; expr: CompiledExpr }[],
        publicOutputs: new Set(stage.public ?? []),
        ...(expiresIn ? { expiresIn } : {}),
        defaultExpiresIn: stage.default_expires_in ?? Infinity,
        readBySend: readsStage(spec, stage.name),
        cacheKey: stage.cache_key,
        success: statusMatcher(stage.success?.status ?? ['2xx']),
        vendorError,
        rules: [...rules, ...DEFAULT_RULES],
      });
    }
  });

  // An origin taken from an auth output must come from a public one: a secret would be written into URLs.
  const publicOf = new Map((spec.auth ?? []).map((st) => [st.name, new Set(st.public ?? [])]));
  const urls: [KeyPath, RequestSpec | undefined][] = [
    ...(spec.auth ?? []).map((st, i): [KeyPath, RequestSpec] => [['auth', i, 'request', 'url'], st.request]),
    [['send', 'request', 'url'], spec.send.request],
    [['send', 'batch', 'poll', 'status', 'url'], spec.send.batch?.poll?.status],
    [['send', 'batch', 'poll', 'results', 'url'], spec.send.batch?.poll?.results],
  ];
  for (const [path, r] of urls) {
    const m = r && /^\{\s*\$auth\s*\.\s*([A-Za-z_]\w*)\s*\.\s*([A-Za-z_]\w*)\s*\}/.exec(r.url);
    if (m && publicOf.get(m[1]!) && !publicOf.get(m[1]!)!.has(m[2]!)) {
      c.problem(path, `the origin comes from $auth.${m[1]}.${m[2]}, a secret output: list '${m[2]}' in that stage's public outputs`);
    }
    // A URL (or origin) from the record: never from a secret field, which would be written into URLs and logs.
    const cf = r && /^\{\s*\$config\s*\.\s*([A-Za-z_]\w*)\s*\}/.exec(r.url);
    if (cf && secretFields.has(cf[1]!)) c.problem(path, `the URL comes from $config.${cf[1]}, a secret config field: URLs are shown in previews and errors, so declare a field that is not secret: true`);
  }

  const send = spec.send;
  const scope = (variables: string[], auth = false, noInput = false): ReferenceScope => ({ variables: new Set(variables), configFields, authStages: auth ? visible : new Map(), ...(noInput ? { noInput } : {}) });
  const batched = send.batch !== undefined;
  // A batch request is made for many events at once, so its URL and headers cannot depend on one of them.
  const sendScope = batched ? scope(['config', 'auth'], true, true) : scope(['config', 'auth', 'event', 'fields'], true);
  const bodyScope = scope(['config', 'event', 'fields']);
  const responseScope = batched ? scope(['config']) : scope(['config', 'event']);
  const request = c.request(['send', 'request'], send.request, sendScope, bodyScope);
  const batch = send.batch ? compileBatch(c, send.batch, { scope, bodyScope, configSchema: spec.config }) : undefined;
  for (const p of splitRuleProblems(spec)) c.problem(p.path, p.message);
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
    rateLimit: {
      scope: rateLimitScope,
      ...(spec.rate_limit?.requests_per_minute !== undefined ? { requests_per_minute: spec.rate_limit.requests_per_minute } : {}),
    },
    presets,
    defaultPreset,
    auth,
    send: {
      ...(batch ? { batch } : {}),
      request,
      checks: checks as CompiledCheck[],
      success: statusMatcher(send.success?.status ?? ['2xx']),
      ...(responseId ? { responseId } : {}),
      keep: keep as { name: string; expr: CompiledExpr }[],
      vendorError,
      rules: [...rules, ...(batch ? BATCH_DEFAULT_RULES : []), ...DEFAULT_RULES],
    },
    recordScope: { variables: new Set(['config', 'event', 'fields']), configFields, authStages: new Map() },
    functions: c.functions,
  };
  return { spec: compiled, diagnostics: [] };
}
