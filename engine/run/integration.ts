/**
 * Stage 4 of 4: run a compiled spec for one integration record. `deliver` turns any event into exactly
 * one outcome and never throws for a per-event problem; `preview` builds the very same requests with
 * secrets and tokens redacted and sends nothing. Specs that declare a batch send many events per
 * request; each event still gets its own outcome, partial failures included.
 */
import { createHash } from 'node:crypto';
import type { Got } from 'got';
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings } from '../compile/expression.js';
import { ExpressionEvalError } from '../compile/expression.js';
import { evaluateMapping, MappingError } from '../compile/mapping.js';
import type { CompiledAuthStage, CompiledBatch, CompiledRule, CompiledSpec } from '../compile/spec.js';
import { TemplateValueError } from '../compile/template.js';
import { RateLimiter } from '../policy/rate-limit.js';
import { REDACTED, redactor, redactValue } from '../policy/redact.js';
import type { CheckedRecord } from '../validate/record.js';
import { Batcher, type Pending } from './batcher.js';
import { buildEventBody, type BuiltBody, type MaybePromise } from './body.js';
import { eventIdOf, eventNameOf, eventProblems, type SignalEvent } from './event.js';
import { exchange, withTimeouts, type ExchangeResult, type WireRequest } from './http.js';
import type { Outcome, OutcomeDetail } from './outcome.js';
import { applyEndpoint, checkHost, parseEndpoint, renderRequest, value, type EndpointBase } from './requests.js';
import type { CachedToken, TokenCache } from './token-cache.js';

export { applyEndpoint } from './requests.js';

export interface PreviewRequest {
  stage: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body exactly as it would go on the wire (secrets redacted), or null. */
  body: string | null;
}

export interface DeliverOptions {
  /** Abort an in-flight delivery (shutdown): it ends as failed, reason `interrupted`, and is not retried. */
  signal?: AbortSignal;
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
type Config = Record<string, unknown>;
/** An outcome before the fields every outcome shares are added. */
type Result = Omit<Outcome, 'event_id' | 'integration' | 'vendor' | 'duration_ms' | 'event'>;
type BatchEntry = { event: SignalEvent; item: unknown; detail: OutcomeDetail };

function retryableRule(rule: CompiledRule | undefined): boolean {
  return rule?.action === 'retry' || rule?.action === 'reauth';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Upper bound on events held in flight by one caller loop (batches of 32,000 rows need a lot). */
const MAX_IN_FLIGHT_EVENTS = 50_000;

export class Integration {
  readonly name: string;
  readonly vendor: string;
  readonly spec: CompiledSpec;
  private readonly checked: CheckedRecord;
  private readonly deps: IntegrationDeps;
  private readonly limiter: RateLimiter | undefined;
  private readonly authKeys: string[];
  /** Secret config values (fixed) and the auth results seen lately (bounded): scrubbed from all output. */
  private readonly configSecrets: string[] = [];
  private readonly tokenSecrets = new Set<string>();
  private redact: (text: string) => string;
  /** The engine's client with this integration's timeouts on every request. */
  private readonly client: Got;
  private readonly endpoint: EndpointBase | undefined;
  private batcher: Batcher<BatchEntry, Result> | undefined;
  private envelopeBytes: Promise<number> | undefined;

  constructor(checked: CheckedRecord, deps: IntegrationDeps) {
    this.checked = checked;
    this.deps = deps;
    this.spec = checked.spec;
    this.name = checked.record.name;
    this.vendor = checked.spec.vendor;
    const rpm = checked.record.rate_limit?.requests_per_minute;
    this.limiter = rpm ? new RateLimiter(rpm) : undefined;
    this.client = withTimeouts(deps.client, { ...checked.spec.timeouts, ...deps.timeouts });
    this.endpoint = deps.endpoint ? parseEndpoint(deps.endpoint) : undefined;
    for (const f of checked.spec.secretFields) {
      const v = checked.record.config[f];
      if (typeof v === 'string' || typeof v === 'number') this.configSecrets.push(String(v));
    }
    this.redact = redactor(this.configSecrets);
    this.authKeys = this.computeAuthKeys();
  }

  /** Events per request when the spec batches, else 1. */
  get batchSize(): number {
    return this.spec.send.batch?.max_items ?? 1;
  }

  /**
   * How many events to keep in flight for `concurrency` parallel requests: a batching integration needs
   * a batch's worth per request or its batches stay small; capped so memory stays bounded.
   */
  inFlightWindow(concurrency: number): number {
    const c = Math.max(1, concurrency);
    return Math.max(c, Math.min(c * this.batchSize, MAX_IN_FLIGHT_EVENTS));
  }

  /** Token cache keys, one per auth stage: computed once, since they depend on the config only. */
  private computeAuthKeys(): string[] {
    const config = this.checked.record.config;
    const secrets = [...this.spec.secretFields].sort().map((f) => [f, config[f] ?? null]);
    const digest = createHash('sha256').update(JSON.stringify(secrets)).digest('base64url');
    let parent = '';
    return this.spec.auth.map((stage, i) => {
      // The stage's own definition, not the vendor: specs sharing an auth stage (via extends) share its tokens.
      const definition = JSON.stringify(this.spec.spec.auth?.[i] ?? stage.name);
      const key = JSON.stringify([definition, this.deps.endpoint ?? '', stage.cacheKey.map((k) => config[k] ?? null), digest, parent]);
      parent = key;
      return key;
    });
  }

  /** Auth results are secrets too, whichever integration fetched them into the shared cache. */
  private rememberSecret(v: unknown): void {
    if (typeof v === 'string' && v.length >= 4 && !this.tokenSecrets.has(v)) {
      // Bounded: tokens rotate, and only recent ones can turn up in vendor text. Config secrets stay.
      if (this.tokenSecrets.size >= 64) {
        const oldest = this.tokenSecrets.values().next().value;
        if (oldest !== undefined) this.tokenSecrets.delete(oldest);
      }
      this.tokenSecrets.add(v);
      this.redact = redactor([...this.configSecrets, ...this.tokenSecrets]);
    }
  }

  private route(wire: WireRequest): WireRequest {
    const { url, forwardedHost } = applyEndpoint(wire.url, this.endpoint);
    if (!forwardedHost) return wire;
    return { ...wire, url, headers: { ...wire.headers, 'X-Forwarded-Host': forwardedHost } };
  }

  private exchangeOptions(rules: readonly CompiledRule[], vendorError: CompiledSpec['send']['vendorError'], success: (s: number) => boolean, bindings: Bindings) {
    return {
      rules,
      vendorError,
      success,
      bindings,
      policy: this.checked.retry,
      ...(this.limiter ? { limiter: this.limiter } : {}),
    };
  }

  // ---- building an event's body (shared by deliver and preview) ----

  private buildBody(event: SignalEvent, config: Config): MaybePromise<BuiltBody> {
    return buildEventBody(this.spec.send, this.checked, event, config);
  }

  // ---- auth ----

  private async runAuthStage(stage: CompiledAuthStage, config: Config, prior: AuthResults): Promise<{ value: Record<string, unknown>; lifetime_s: number }> {
    const bindings = { config, auth: prior };
    const body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
    const wire = await renderRequest(`auth.${stage.name}`, stage.request, undefined, bindings, body);
    checkHost(wire.stage, wire.url, this.spec.allowedHosts);
    const res = await exchange(this.client, this.route(wire), this.exchangeOptions(stage.rules, stage.vendorError, stage.success, { config }));
    if (res.status === undefined || !stage.success(res.status)) throw this.failure(REASONS.auth, `auth stage '${stage.name}' failed`, res);
    const out: Record<string, unknown> = {};
    for (const r of stage.result) {
      const v = await value(r.expr, res.json, { config });
      if (v === undefined || v === null || v === '') {
        throw new DeliveryError(REASONS.auth, `auth stage '${stage.name}' answered ${res.status} without '${r.name}'`, { retryable: true, http_status: res.status });
      }
      out[r.name] = v;
    }
    const lifetime = stage.expiresIn ? Number(await value(stage.expiresIn, res.json, { config })) : stage.defaultExpiresIn;
    return { value: out, lifetime_s: Number.isFinite(lifetime) && lifetime > 0 ? lifetime : stage.defaultExpiresIn };
  }

  /** Results of every auth stage, from the shared cache or one shared fetch per stage. */
  private async authenticate(config: Config): Promise<{ results: AuthResults; used: CachedToken<Record<string, unknown>>[] }> {
    const results: AuthResults = {};
    const used: CachedToken<Record<string, unknown>>[] = [];
    for (const [i, stage] of this.spec.auth.entries()) {
      const prior = { ...results };
      const entry = await this.deps.tokens.get(
        this.authKeys[i]!,
        () => this.runAuthStage(stage, config, prior),
        (e) => e instanceof DeliveryError && !e.retryable,
      );
      results[stage.name] = entry.value;
      for (const v of Object.values(entry.value)) this.rememberSecret(v);
      used.push(entry);
    }
    return { results, used };
  }

  /** Send a request that needs auth: on a `reauth` rule the tokens it used are dropped and fetched again, once. */
  private async sendWithAuth(
    wireFor: (auth: AuthResults) => Promise<WireRequest>,
    opts: ReturnType<Integration['exchangeOptions']>,
  ): Promise<{ res: ExchangeResult; auth: AuthResults }> {
    const config = this.checked.record.config;
    let { results, used } = await this.authenticate(config);
    const wire = await wireFor(results);
    checkHost(wire.stage, wire.url, this.spec.allowedHosts);
    const res = await exchange(this.client, this.route(wire), {
      ...opts,
      ...(this.spec.auth.length
        ? {
            headersForRetry: async (reauth: boolean) => {
              // Drop the tokens the failed attempt used (unless another delivery already replaced them).
              if (reauth) used.forEach((entry, i) => this.deps.tokens.invalidate(this.authKeys[i]!, entry));
              ({ results, used } = await this.authenticate(config));
              return (await wireFor(results)).headers;
            },
          }
        : {}),
    });
    return { res, auth: results };
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

  private failedFrom(e: unknown): Result {
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
        attempts: 0,
      };
    }
    if (e instanceof ExpressionEvalError || e instanceof MappingError || e instanceof TemplateValueError) {
      return { status: 'failed', reason: REASONS.mapping, message: this.redact(`mapping failed: ${e.message}`), retryable: false, attempts: 0 };
    }
    // An engine bug must still end as an outcome, not a crash.
    return { status: 'failed', reason: REASONS.internal, message: this.redact(String((e as Error)?.message ?? e)), retryable: true, attempts: 0 };
  }

  // ---- public API ----

  /** Deliver one event: always resolves with exactly one outcome. In batch mode, when its batch is done. */
  deliver(event: unknown, opts: DeliverOptions = {}): Promise<Outcome> {
    return this.run(event, undefined, opts.signal);
  }

  /** `parked` is called once the event is queued in a batch or settled, whichever comes first. */
  private async run(event: unknown, parked: (() => void) | undefined, signal?: AbortSignal): Promise<Outcome> {
    const started = Date.now();
    const detail: OutcomeDetail = { attempts: [] };
    const name = eventNameOf(event);
    const base = { event_id: eventIdOf(event), integration: this.name, vendor: this.vendor, ...(name !== undefined ? { event: name } : {}) };
    let result: Result;
    try {
      result = await this.deliverInner(event, detail, parked, signal);
    } catch (e) {
      result = { ...this.failedFrom(e), attempts: detail.attempts.length };
    }
    if (!detail.queued) parked?.();
    const outcome: Outcome = { ...base, ...result, duration_ms: Date.now() - started };
    this.deps.onOutcome?.(outcome, detail);
    return outcome;
  }

  private async deliverInner(raw: unknown, detail: OutcomeDetail, parked: (() => void) | undefined, signal: AbortSignal | undefined): Promise<Result> {
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
    const batch = this.spec.send.batch;
    if (batch) return this.enqueue(batch, event, body, fields, detail, parked);

    const send = this.spec.send;
    const { res } = await this.sendWithAuth(
      (auth) => renderRequest('send', send.request, event, { config, event, fields, auth }, body),
      { ...this.exchangeOptions(send.rules, send.vendorError, send.success, { config, event }), ...(signal ? { signal } : {}) },
    );
    if (res.aborted) return { status: 'failed', reason: REASONS.interrupted, message: 'delivery was interrupted', retryable: true, attempts: res.attempts.length, ...(res.attempts.length ? { possibly_duplicated: true } : {}) };
    detail.attempts.push(...res.attempts.map((a) => ({ ...a, stage: 'send' })));
    const common = { attempts: res.attempts.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
    if (res.status === undefined || !send.success(res.status)) {
      return { ...this.failedFrom(this.failure(REASONS.http, 'the vendor did not accept the event', res)), ...common };
    }
    const out: Result = { status: 'delivered', http_status: res.status, ...common };
    const rb = { config, event };
    if (send.responseId) {
      const id = await value(send.responseId, res.json, rb).catch(() => undefined);
      if (id !== undefined && id !== null) out.response_id = String(id);
    }
    if (send.keep.length) {
      out.response = {};
      // A kept value may be an object holding a token: every string in it is scrubbed.
      for (const k of send.keep) out.response[k.name] = redactValue(await value(k.expr, res.json, rb).catch(() => undefined), this.redact);
    }
    return out;
  }

  // ---- batches ----

  private async enqueue(batch: CompiledBatch, event: SignalEvent, body: unknown, fields: unknown, detail: OutcomeDetail, parked: (() => void) | undefined): Promise<Result> {
    const config = this.checked.record.config;
    const item = batch.item ? await evaluateMapping(batch.item, body, { config, event, fields }) : body;
    const bytes = Buffer.byteLength(JSON.stringify(item));
    // The envelope (the body with no items) depends on the config only: measured once.
    this.envelopeBytes ??= Promise.resolve(evaluateMapping(batch.body, undefined, { config, items: [] })).then((b) => Buffer.byteLength(JSON.stringify(b)));
    const envelope = await this.envelopeBytes;
    if (envelope + bytes > batch.max_bytes) {
      return { status: 'failed', reason: REASONS.itemTooLarge, message: `the event's item is ${bytes} bytes; a batch request may carry at most ${batch.max_bytes}`, retryable: false, attempts: 0 };
    }
    this.batcher ??= new Batcher<BatchEntry, Result>(
      { max_items: batch.max_items, max_bytes: batch.max_bytes, max_wait_ms: batch.max_wait_ms, envelope_bytes: envelope, max_in_flight: batch.max_in_flight },
      (entries) => this.sendBatch(batch, entries),
    );
    const done = this.batcher.add({ event, item, detail }, bytes);
    detail.queued = true;
    parked?.();
    return done;
  }

  private async sendBatch(batch: CompiledBatch, entries: Pending<BatchEntry, Result>[]): Promise<void> {
    const settle = (i: number, r: Result) => entries[i]!.resolve(r);
    try {
      const results = await this.runBatch(batch, entries.map((e) => e.item.item));
      entries.forEach((e, i) => {
        e.item.detail.attempts.push(...results.attempts);
        settle(i, results.items[i]!);
      });
    } catch (e) {
      const failed = this.failedFrom(e);
      entries.forEach((_, i) => settle(i, failed));
    }
  }

  /** Send one batch and map the answer back to one result per item, in order. */
  private async runBatch(batch: CompiledBatch, items: unknown[]): Promise<{ items: Result[]; attempts: OutcomeDetail['attempts'] }> {
    const config = this.checked.record.config;
    const send = this.spec.send;
    const body = await evaluateMapping(batch.body, undefined, { config, items });
    const { res, auth } = await this.sendWithAuth(
      (a) => renderRequest('send', send.request, undefined, { config, auth: a }, body),
      this.exchangeOptions(send.rules, send.vendorError, send.success, { config }),
    );
    const attempts = res.attempts.map((a) => ({ ...a, stage: 'send' }));
    const common = { attempts: res.attempts.length, batch_size: items.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
    if (res.status === undefined || !send.success(res.status)) {
      const failed = { ...this.failedFrom(this.failure(REASONS.http, 'the vendor did not accept the batch', res)), ...common };
      return { items: items.map(() => failed), attempts };
    }
    const rb = { config };
    const batchId = send.responseId ? await value(send.responseId, res.json, rb).catch(() => undefined) : undefined;
    const out: Result[] = items.map(() => ({
      status: 'delivered',
      http_status: res.status!,
      ...common,
      ...(batchId !== undefined && batchId !== null ? { response_id: String(batchId) } : {}),
    }));

    // Per-item results in the immediate answer, aligned with the items sent.
    const r = batch.results;
    const perItem = r?.items ? await value(r.items, res.json, rb).catch(() => undefined) : undefined;
    if (r && Array.isArray(perItem)) {
      for (const [i, entry] of perItem.entries()) {
        if (i >= out.length) break;
        const ok = r.ok ? (await value(r.ok, entry, rb).catch(() => false)) === true : true;
        if (ok) {
          const id = r.id ? await value(r.id, entry, rb).catch(() => undefined) : undefined;
          if (id !== undefined && id !== null) out[i]!.response_id = String(id);
        } else {
          out[i] = await this.itemFailure(entry, r, common, res.status!);
        }
      }
    }

    // Vendors that work asynchronously: wait for processing, then read which items were rejected.
    if (batch.poll && (!batch.poll.when || (await value(batch.poll.when, undefined, rb)) === true)) {
      try {
        await this.poll(batch.poll, res.json, auth, out, common);
      } catch (e) {
        // The vendor accepted the batch: failing its events now would invite a retry that writes them twice.
        const why = e instanceof Error ? this.redact(e.message) : 'unknown error';
        for (const o of out) if (o.status === 'delivered') o.message = `accepted, but its processing results could not be read: ${why}`;
      }
    }
    return { items: out, attempts };
  }

  private async itemFailure(entry: unknown, r: NonNullable<CompiledBatch['results']> | NonNullable<CompiledBatch['poll']>, common: Partial<Result>, status: number): Promise<Result> {
    const config = this.checked.record.config;
    const message = r.message ? await value(r.message, entry, { config }).catch(() => undefined) : undefined;
    const code = r.code ? await value(r.code, entry, { config }).catch(() => undefined) : undefined;
    return {
      ...common,
      status: 'failed',
      reason: REASONS.itemRejected,
      message: this.redact(typeof message === 'string' ? message : 'the vendor rejected this item of the batch'),
      retryable: false,
      http_status: status,
      ...(typeof code === 'string' || typeof code === 'number' ? { vendor_code: code } : {}),
      ...(r.hint ? { hint: r.hint } : {}),
      attempts: common.attempts ?? 1,
    };
  }

  private async poll(poll: NonNullable<CompiledBatch['poll']>, response: unknown, auth: AuthResults, out: Result[], common: Partial<Result>): Promise<void> {
    const config = this.checked.record.config;
    const send = this.spec.send;
    const opts = this.exchangeOptions(send.rules, send.vendorError, (s) => s >= 200 && s < 300, { config });
    const deadline = Date.now() + poll.max_wait_ms;
    let status: unknown;
    for (;;) {
      const { res } = await this.sendWithAuth((a) => renderRequest('poll.status', poll.status, undefined, { config, auth: a, response }, undefined), opts);
      if (res.status === undefined || res.status >= 300) throw this.failure(REASONS.http, 'the batch was accepted but its status could not be read', res);
      status = res.json;
      if ((await value(poll.done, status, { config })) === true) break;
      if (Date.now() + poll.interval_ms > deadline) {
        for (const o of out) if (o.status === 'delivered') o.message = `accepted; processing not confirmed within ${poll.max_wait_ms} ms`;
        return;
      }
      await sleep(poll.interval_ms);
    }
    void auth;
    // Results come in pages: follow them while the spec says more follow (never more pages than items).
    for (let page = 1; page <= out.length; page++) {
      const { res } = await this.sendWithAuth((a) => renderRequest('poll.results', poll.results, undefined, { config, auth: a, response, status, page }, undefined), opts);
      if (res.status === undefined || res.status >= 300) throw this.failure(REASONS.http, 'the batch was processed but its results could not be read', res);
      const errors = await value(poll.errors, res.json, { config });
      if (Array.isArray(errors)) {
        for (const entry of errors) {
          const index = await value(poll.index, entry, { config }).catch(() => undefined);
          if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= out.length) continue;
          out[index] = await this.itemFailure(entry, poll, common, res.status);
        }
      }
      if (!poll.more || (await value(poll.more, res.json, { config, page })) !== true) break;
    }
  }

  /** Events waiting in batches not yet sent (batching specs), for metrics and shutdown. */
  get pending(): number {
    return this.batcher?.pending ?? 0;
  }

  /** Send whatever a batching integration still holds, and wait for it (end of input, shutdown). */
  async flush(): Promise<void> {
    await this.batcher?.flush();
  }

  /** The exact requests `deliver` would send for this event, secrets and tokens redacted; sends nothing. */
  async preview(raw: unknown): Promise<PreviewRequest[]> {
    const problems = eventProblems(raw);
    if (problems.length) throw new DeliveryError(REASONS.invalidEvent, problems.join('; '));
    const event = raw as SignalEvent;
    const config: Config = { ...this.checked.record.config };
    for (const f of this.spec.secretFields) if (config[f] !== undefined) config[f] = REDACTED;
    const out: PreviewRequest[] = [];
    const push = (w: WireRequest) => {
      const r = this.route(w);
      out.push({ stage: r.stage, method: r.method, url: r.url, headers: r.headers, body: r.body ?? null });
    };
    const auth: AuthResults = {};
    for (const stage of this.spec.auth) {
      const bindings = { config, auth: { ...auth } };
      const body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
      push(await renderRequest(`auth.${stage.name}`, stage.request, undefined, bindings, body));
      auth[stage.name] = Object.fromEntries(stage.result.map((r) => [r.name, REDACTED]));
    }
    const { body, fields } = await this.buildBody(event, config);
    const batch = this.spec.send.batch;
    if (batch) {
      // A batch of one: the request this event would travel in if it were alone.
      const item = batch.item ? await evaluateMapping(batch.item, body, { config, event, fields }) : body;
      const envelope = await evaluateMapping(batch.body, undefined, { config, items: [item] });
      push(await renderRequest('send', this.spec.send.request, undefined, { config, auth }, envelope));
    } else {
      push(await renderRequest('send', this.spec.send.request, event, { config, event, fields, auth }, body));
    }
    return out;
  }

  /** Deliver many events; outcomes come back in input order. A batching integration fills whole batches. */
  async deliverAll(events: readonly unknown[], opts: { concurrency?: number } = {}): Promise<Outcome[]> {
    const concurrency = this.inFlightWindow(opts.concurrency ?? 32);
    const outcomes: Outcome[] = new Array<Outcome>(events.length);
    let next = 0;
    // Once every event is either queued in a batch or already settled, nothing else is coming:
    // send the partial batch now instead of waiting for its timer.
    let parked = 0;
    const onParked = () => {
      if (++parked >= events.length) void this.flush();
    };
    const worker = async () => {
      while (next < events.length) {
        const i = next++;
        outcomes[i] = await this.run(events[i], onParked);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
    return outcomes;
  }
}
