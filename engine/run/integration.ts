/**
 * Stage 4 of 4: run a compiled spec for one integration record. `deliver` turns any event into exactly
 * one outcome and never throws for a per-event problem; `preview` builds the very same requests with
 * secrets and tokens redacted and sends nothing.
 */
import { createHash } from 'node:crypto';
import type { Got } from 'got';
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings, CompiledExpr } from '../compile/expression.js';
import { ExpressionEvalError } from '../compile/expression.js';
import { evaluateMapping, MappingError, setPath } from '../compile/mapping.js';
import type { CompiledAuthStage, CompiledRequest, CompiledRule, CompiledSpec, CompiledTemplate } from '../compile/spec.js';
import { renderTemplate, TemplateValueError } from '../compile/template.js';
import { hostAllowed } from '../policy/hosts.js';
import { RateLimiter } from '../policy/rate-limit.js';
import { REDACTED, redactor } from '../policy/redact.js';
import type { CheckedRecord } from '../validate/record.js';
import { eventIdOf, eventNameOf, eventProblems, type SignalEvent } from './event.js';
import { exchange, type ExchangeResult, type WireRequest } from './http.js';
import type { Outcome, OutcomeDetail } from './outcome.js';
import type { CachedToken, TokenCache } from './token-cache.js';

export interface PreviewRequest {
  stage: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body exactly as it would go on the wire (secrets redacted), or null. */
  body: string | null;
}

export interface IntegrationDeps {
  client: Got;
  tokens: TokenCache<Record<string, unknown>>;
  /** Send every request to this base URL instead (local emulator, proxy); the original host goes in X-Forwarded-Host. */
  endpoint?: string;
  onOutcome?: (outcome: Outcome, detail: OutcomeDetail) => void;
  /** Per-request timeouts override (tests, CLI). */
  timeouts?: { connect_ms?: number; response_ms?: number };
}

type AuthResults = Record<string, Record<string, unknown>>;

async function value(expr: CompiledExpr, input: unknown, bindings: Bindings): Promise<unknown> {
  const v = expr.evaluate(input, bindings);
  return v instanceof Promise ? await v : v;
}

async function renderTpl(t: CompiledTemplate, input: unknown, bindings: Bindings): Promise<string> {
  const values: unknown[] = [];
  for (const e of t.exprs) values.push(await value(e, input, bindings));
  return renderTemplate(t.parts, values, t.context);
}

/** Pure: where a request goes once an endpoint override applies. */
export function applyEndpoint(url: string, endpoint: string | undefined): { url: string; forwardedHost?: string } {
  if (!endpoint) return { url };
  const original = new URL(url);
  const base = new URL(endpoint);
  const basePath = base.pathname.replace(/\/$/, '');
  return { url: `${base.origin}${basePath}${original.pathname}${original.search}`, forwardedHost: original.host };
}

function encodeBody(body: unknown, encoding: 'json' | 'form'): string {
  if (encoding === 'json') return JSON.stringify(body);
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    params.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return params.toString();
}

function retryableRule(rule: CompiledRule | undefined): boolean {
  return rule?.action === 'retry' || rule?.action === 'reauth';
}

export class Integration {
  readonly name: string;
  readonly vendor: string;
  readonly spec: CompiledSpec;
  private readonly checked: CheckedRecord;
  private readonly deps: IntegrationDeps;
  private readonly limiter: RateLimiter | undefined;
  private readonly authKeys: string[];
  private readonly secretValues = new Set<string>();
  private redact: (text: string) => string;
  private readonly timeouts: { connect_ms: number; response_ms: number };

  constructor(checked: CheckedRecord, deps: IntegrationDeps) {
    this.checked = checked;
    this.deps = deps;
    this.spec = checked.spec;
    this.name = checked.record.name;
    this.vendor = checked.spec.vendor;
    const rpm = checked.record.rate_limit?.requests_per_minute;
    this.limiter = rpm ? new RateLimiter(rpm) : undefined;
    this.timeouts = { ...checked.spec.timeouts, ...deps.timeouts };
    for (const f of checked.spec.secretFields) {
      const v = checked.record.config[f];
      if (typeof v === 'string' || typeof v === 'number') this.secretValues.add(String(v));
    }
    this.redact = redactor(this.secretValues);
    this.authKeys = this.computeAuthKeys();
  }

  /** Token cache keys, one per auth stage: computed once, since they depend on the config only. */
  private computeAuthKeys(): string[] {
    const config = this.checked.record.config;
    const secrets = [...this.spec.secretFields].sort().map((f) => [f, config[f] ?? null]);
    const digest = createHash('sha256').update(JSON.stringify(secrets)).digest('base64url');
    let parent = '';
    return this.spec.auth.map((stage) => {
      const key = JSON.stringify([this.vendor, stage.name, this.deps.endpoint ?? '', stage.cacheKey.map((k) => config[k] ?? null), digest, parent]);
      parent = key;
      return key;
    });
  }

  private rememberSecret(v: unknown): void {
    if (typeof v === 'string' && v.length >= 4 && !this.secretValues.has(v)) {
      // Keep the set bounded: tokens rotate, and only the recent ones can appear in vendor text.
      if (this.secretValues.size > 64) {
        const first = this.secretValues.values().next().value;
        if (first !== undefined) this.secretValues.delete(first);
      }
      this.secretValues.add(v);
      this.redact = redactor(this.secretValues);
    }
  }

  // ---- building requests (shared by deliver and preview, so a preview is exactly what is sent) ----

  private bindings(event: unknown, fields: unknown, auth: AuthResults, config: Record<string, unknown>): Bindings {
    return { config, event, fields, auth };
  }

  private async fieldsFor(event: SignalEvent, config: Record<string, unknown>): Promise<Record<string, unknown>> {
    const mapping = this.checked.presetEvents?.events.get(event.event);
    if (!mapping) return {};
    const v = await evaluateMapping(mapping, event, { config, event });
    return (v ?? {}) as Record<string, unknown>;
  }

  private async buildBody(event: SignalEvent, config: Record<string, unknown>): Promise<{ body: unknown; fields: Record<string, unknown> }> {
    const fields = await this.fieldsFor(event, config);
    const send = this.spec.send.request;
    const b = { config, event, fields };
    let body = send.body ? await evaluateMapping(send.body, event, b) : undefined;
    if (this.checked.overrides.length) {
      if (body === undefined) body = Object.create(null) as Record<string, unknown>;
      for (const o of this.checked.overrides) setPath(body as Record<string, unknown>, o.path, o.expr ? await value(o.expr, event, b) : undefined);
    }
    return { body, fields };
  }

  private async runChecks(body: unknown, event: SignalEvent, config: Record<string, unknown>, fields: unknown): Promise<DeliveryError | undefined> {
    for (const check of this.spec.send.checks) {
      const ok = await value(check.that, body, { config, event, fields });
      if (ok !== true) return new DeliveryError(REASONS.check, check.message, { retryable: false, ...(check.hint ? { hint: check.hint } : {}) });
    }
    return undefined;
  }

  private async render(stage: string, req: CompiledRequest, input: unknown, bindings: Bindings, body: unknown): Promise<WireRequest> {
    const url = await renderTpl(req.url, input, bindings);
    const headers: Record<string, string> = {};
    for (const h of req.headers) headers[h.name] = await renderTpl(h.value, input, bindings);
    const wire: WireRequest = { stage, method: req.method, url, headers };
    if (body !== undefined) {
      wire.body = encodeBody(body, req.encoding);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) {
        headers['Content-Type'] = req.encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
      }
    }
    return wire;
  }

  /** Checked after templating and before anything is sent: the URL must be https (or a loopback http) on an allowed host. */
  private checkHost(stage: string, url: string): void {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DeliveryError(REASONS.hostNotAllowed, `${stage}: the request URL is not a valid URL`);
    }
    if (parsed.username || parsed.password || !['https:', 'http:'].includes(parsed.protocol) || !hostAllowed(parsed.hostname, this.spec.allowedHosts)) {
      throw new DeliveryError(REASONS.hostNotAllowed, `${stage}: host '${parsed.hostname}' is not in the spec's allowed_hosts (${this.spec.allowedHosts.join(', ')})`, {
        hint: 'The request URL was built from the config or the event; check the values that fill the URL template.',
      });
    }
  }

  private route(wire: WireRequest): WireRequest {
    const { url, forwardedHost } = applyEndpoint(wire.url, this.deps.endpoint);
    if (!forwardedHost) return wire;
    return { ...wire, url, headers: { ...wire.headers, 'X-Forwarded-Host': forwardedHost } };
  }

  // ---- auth ----

  private async runAuthStage(i: number, stage: CompiledAuthStage, config: Record<string, unknown>, prior: AuthResults): Promise<{ value: Record<string, unknown>; lifetime_s: number }> {
    const bindings = { config, auth: prior };
    const body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
    const wire = await this.render(`auth.${stage.name}`, stage.request, undefined, bindings, body);
    this.checkHost(`auth.${stage.name}`, wire.url);
    const res = await exchange(this.deps.client, this.route(wire), {
      rules: stage.rules,
      vendorError: stage.vendorError,
      success: stage.success,
      bindings: { config },
      policy: this.checked.retry,
      timeouts: this.timeouts,
      ...(this.limiter ? { limiter: this.limiter } : {}),
    });
    if (res.status === undefined || !stage.success(res.status)) throw this.failure(REASONS.auth, `auth stage '${stage.name}' failed`, res);
    const out: Record<string, unknown> = {};
    for (const r of stage.result) {
      const v = await value(r.expr, res.json, { config });
      if (v === undefined || v === null || v === '') {
        throw new DeliveryError(REASONS.auth, `auth stage '${stage.name}' answered ${res.status} without '${r.name}'`, { retryable: true, http_status: res.status });
      }
      out[r.name] = v;
      this.rememberSecret(v);
    }
    const lifetime = stage.expiresIn ? Number(await value(stage.expiresIn, res.json, { config })) : stage.defaultExpiresIn;
    void i;
    return { value: out, lifetime_s: Number.isFinite(lifetime) && lifetime > 0 ? lifetime : stage.defaultExpiresIn };
  }

  /** Results of every auth stage, from the shared cache or one shared fetch per stage. */
  private async authenticate(config: Record<string, unknown>): Promise<{ results: AuthResults; used: CachedToken<Record<string, unknown>>[] }> {
    const results: AuthResults = {};
    const used: CachedToken<Record<string, unknown>>[] = [];
    for (const [i, stage] of this.spec.auth.entries()) {
      const prior = { ...results };
      const entry = await this.deps.tokens.get(
        this.authKeys[i]!,
        () => this.runAuthStage(i, stage, config, prior),
        (e) => e instanceof DeliveryError && !e.retryable,
      );
      results[stage.name] = entry.value;
      used.push(entry);
    }
    return { results, used };
  }

  private failure(reason: string, what: string, res: ExchangeResult): DeliveryError {
    const f = res.facts ?? {};
    const parts = [what];
    if (res.status !== undefined) parts.push(`HTTP ${res.status}`);
    if (f.network) parts.push(`network error ${f.network}`);
    if (f.vendor_code !== undefined) parts.push(`vendor code ${f.vendor_code}`);
    if (res.gave_up) parts.push(`gave up: ${res.gave_up.replace(/_/g, ' ')} after ${res.attempts.length} attempt(s)`);
    const msg = f.message ? this.redact(f.message) : undefined;
    return new DeliveryError(res.status === undefined && f.network ? REASONS.network : reason, this.redact(parts.join(', ')), {
      retryable: retryableRule(res.rule),
      ...(res.rule?.hint ? { hint: res.rule.hint } : {}),
      ...(res.status !== undefined ? { http_status: res.status } : {}),
      ...(f.vendor_code !== undefined ? { vendor_code: f.vendor_code } : {}),
      ...(msg ? { vendor_message: msg } : {}),
    });
  }

  // ---- public API ----

  /** Deliver one event: always resolves with exactly one outcome. */
  async deliver(event: unknown): Promise<Outcome> {
    const started = Date.now();
    const detail: OutcomeDetail = { attempts: [] };
    const base = { event_id: eventIdOf(event), integration: this.name, vendor: this.vendor, ...(eventNameOf(event) ? { event: eventNameOf(event)! } : {}) };
    let outcome: Outcome;
    try {
      outcome = { ...base, ...(await this.deliverInner(event, detail)), duration_ms: Date.now() - started };
    } catch (e) {
      outcome = { ...base, ...this.failedFrom(e), attempts: detail.attempts.filter((a) => a.stage === 'send').length, duration_ms: Date.now() - started };
    }
    this.deps.onOutcome?.(outcome, detail);
    return outcome;
  }

  private failedFrom(e: unknown): Pick<Outcome, 'status' | 'reason' | 'message' | 'retryable' | 'hint' | 'http_status' | 'vendor_code' | 'vendor_message'> {
    if (e instanceof DeliveryError) {
      return {
        status: 'failed',
        reason: e.code,
        message: this.redact(e.message),
        retryable: e.retryable,
        ...(e.hint ? { hint: e.hint } : {}),
        ...(e.http_status !== undefined ? { http_status: e.http_status } : {}),
        ...(e.vendor_code !== undefined ? { vendor_code: e.vendor_code } : {}),
        ...(e.vendor_message ? { vendor_message: this.redact(e.vendor_message) } : {}),
      };
    }
    if (e instanceof ExpressionEvalError || e instanceof MappingError || e instanceof TemplateValueError) {
      return { status: 'failed', reason: REASONS.mapping, message: this.redact(`mapping failed: ${e.message}`), retryable: false };
    }
    // An engine bug must still end as an outcome, not a crash.
    return { status: 'failed', reason: 'internal_error', message: this.redact(String((e as Error)?.message ?? e)), retryable: true };
  }

  private async deliverInner(raw: unknown, detail: OutcomeDetail): Promise<Omit<Outcome, 'event_id' | 'integration' | 'vendor' | 'duration_ms'>> {
    const problems = eventProblems(raw);
    if (problems.length) return { status: 'failed', reason: REASONS.invalidEvent, message: problems.join('; '), retryable: false, attempts: 0 };
    const event = raw as SignalEvent;
    const { record } = this.checked;
    if (!record.enabled) return { status: 'skipped', reason: REASONS.disabled, message: 'the integration is disabled', attempts: 0 };
    if (this.checked.forwarded && !this.checked.forwarded.has(event.event)) {
      return { status: 'skipped', reason: REASONS.notForwarded, message: `'${event.event}' is not an event this integration forwards`, attempts: 0 };
    }
    const missing = this.checked.consent.filter((c) => event.consent?.[c] !== true);
    if (missing.length) return { status: 'skipped', reason: REASONS.consent, message: `consent not granted for: ${missing.join(', ')}`, attempts: 0 };

    const config = record.config;
    const { body, fields } = await this.buildBody(event, config);
    const failedCheck = await this.runChecks(body, event, config, fields);
    if (failedCheck) throw failedCheck;

    const { results, used } = await this.authenticate(config);
    const bindings = this.bindings(event, fields, results, config);
    const wire = await this.render('send', this.spec.send.request, event, bindings, body);
    this.checkHost('send', wire.url);
    const headerExprs = this.spec.send.request.headers;
    const send = this.spec.send;
    const res = await exchange(this.deps.client, this.route(wire), {
      rules: send.rules,
      vendorError: send.vendorError,
      success: send.success,
      bindings: { config, event },
      policy: this.checked.retry,
      timeouts: this.timeouts,
      ...(this.limiter ? { limiter: this.limiter } : {}),
      ...(this.spec.auth.length
        ? {
            reauth: async () => {
              // Drop the tokens this attempt used (unless someone already replaced them), fetch fresh ones once.
              used.forEach((entry, i) => this.deps.tokens.invalidate(this.authKeys[i]!, entry));
              const fresh = await this.authenticate(config);
              const b = this.bindings(event, fields, fresh.results, config);
              const headers: Record<string, string> = {};
              for (const h of headerExprs) headers[h.name] = await renderTpl(h.value, event, b);
              return headers;
            },
          }
        : {}),
    });
    detail.attempts.push(...res.attempts.map((a) => ({ ...a, stage: 'send' })));
    const common = { attempts: res.attempts.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
    if (res.status !== undefined && send.success(res.status)) {
      const out: Omit<Outcome, 'event_id' | 'integration' | 'vendor' | 'duration_ms'> = { status: 'delivered', http_status: res.status, ...common };
      const rb = { config, event };
      if (send.responseId) {
        const id = await value(send.responseId, res.json, rb).catch(() => undefined);
        if (id !== undefined && id !== null) out.response_id = String(id);
      }
      if (send.keep.length) {
        out.response = {};
        for (const k of send.keep) out.response[k.name] = await value(k.expr, res.json, rb).catch(() => undefined);
      }
      return out;
    }
    return { ...this.failedFrom(this.failure(REASONS.http, 'the vendor did not accept the event', res)), ...common };
  }

  /** The exact requests `deliver` would send for this event, secrets and tokens redacted; sends nothing. */
  async preview(raw: unknown): Promise<PreviewRequest[]> {
    const problems = eventProblems(raw);
    if (problems.length) throw new DeliveryError(REASONS.invalidEvent, problems.join('; '));
    const event = raw as SignalEvent;
    const config: Record<string, unknown> = { ...this.checked.record.config };
    for (const f of this.spec.secretFields) if (config[f] !== undefined) config[f] = REDACTED;
    const out: PreviewRequest[] = [];
    const auth: AuthResults = {};
    for (const stage of this.spec.auth) {
      const bindings = { config, auth: { ...auth } };
      const body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
      const wire = this.route(await this.render(`auth.${stage.name}`, stage.request, undefined, bindings, body));
      out.push({ stage: wire.stage, method: wire.method, url: wire.url, headers: wire.headers, body: wire.body ?? null });
      auth[stage.name] = Object.fromEntries(stage.result.map((r) => [r.name, REDACTED]));
    }
    const { body, fields } = await this.buildBody(event, config);
    const failedCheck = await this.runChecks(body, event, config, fields);
    if (failedCheck) throw failedCheck;
    const wire = this.route(await this.render('send', this.spec.send.request, event, this.bindings(event, fields, auth, config), body));
    out.push({ stage: wire.stage, method: wire.method, url: wire.url, headers: wire.headers, body: wire.body ?? null });
    return out;
  }

  /** Deliver many events with bounded concurrency; outcomes come back in input order. */
  async deliverAll(events: readonly unknown[], opts: { concurrency?: number } = {}): Promise<Outcome[]> {
    const concurrency = Math.max(1, opts.concurrency ?? 32);
    const outcomes: Outcome[] = new Array<Outcome>(events.length);
    let next = 0;
    const worker = async () => {
      while (next < events.length) {
        const i = next++;
        outcomes[i] = await this.deliver(events[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
    return outcomes;
  }
}
