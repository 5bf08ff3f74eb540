/**
 * What every stage of one integration shares: the checked record, the engine's dependencies, the client
 * with this integration's timeouts, the rate limiter, the redaction of secrets, the endpoint override and
 * the token cache keys. Built once per integration; the stage modules (auth-chain, send, batch-send,
 * preview) take it instead of reaching into the Integration.
 */
import { createHash } from 'node:crypto';
import type { Got } from 'got';
import { DeliveryError, REASONS, type Reason } from '../errors.js';
import type { Bindings } from '../compile/expression.js';
import { ExpressionEvalError } from '../compile/expression.js';
import { evaluateMapping, MappingError, setPath } from '../compile/mapping.js';
import type { CompiledRule, CompiledSpec } from '../compile/spec.js';
import { TemplateValueError } from '../compile/template.js';
import { RateLimiter } from '../policy/rate-limit.js';
import { concealWhenPrinted, redactAndCut, redactor } from '../policy/redact.js';
import type { RetryPolicy } from '../policy/retry-delay.js';
import type { CheckedRecord } from '../validate/record.js';
import type { SignalEvent } from './event.js';
import { bodyBuilder, type BodyBuilder, type BuiltBody, type MaybePromise } from './body.js';
import { withTimeouts, type ExchangeOptions, type ExchangeResult, type WireRequest } from './http.js';
import type { DistributiveOmit, Outcome, OutcomeDetail } from './outcome.js';
import { DeliveryLifecycle } from './lifecycle.js';
import { applyEndpoint, parseEndpoint, value, type EndpointBase } from './requests.js';
import type { CachedToken, Limiter, TokenStore } from '../store/types.js';

export interface IntegrationDeps {
  client: Got;
  tokens: TokenStore<Record<string, unknown>>;
  /** The rate limiter this record's requests wait on (shared by its scope; engine/store); default: its own, from its record. */
  limiter?: Limiter;
  /** Send every request to this base URL instead (local emulator, proxy); the original host goes in X-Forwarded-Host. */
  endpoint?: string;
  onOutcome?: (outcome: Outcome, detail: OutcomeDetail) => void;
  /** Per-request timeouts override (tests, CLI). */
  timeouts?: { connect_ms?: number; response_ms?: number };
  /** The engine's retry policy over the default; the record's `retry` still wins. */
  retry?: Partial<RetryPolicy>;
  /** The engine's lifecycle (shutdown): shared by its integrations; one of its own when absent. */
  lifecycle?: DeliveryLifecycle;
}

export type AuthResults = Record<string, Record<string, unknown>>;
export type Config = Record<string, unknown>;
/** An outcome before the fields every outcome shares are added. */
export type Result = DistributiveOmit<Outcome, 'event_id' | 'integration' | 'vendor' | 'duration_ms' | 'event'>;

function retryableRule(rule: CompiledRule | undefined): boolean {
  return rule?.action === 'retry' || rule?.action === 'reauth';
}

export class IntegrationContext {
  readonly checked: CheckedRecord;
  private bodies: BodyBuilder | undefined;
  readonly spec: CompiledSpec;
  readonly deps: IntegrationDeps;
  readonly limiter: Limiter | undefined;
  /** Token cache keys, one per auth stage: computed once, since they depend on the config only. */
  readonly authKeys: string[];
  /** The engine's client with this integration's timeouts on every request. */
  readonly client: Got;
  readonly endpoint: EndpointBase | undefined;
  /** Default policy, then the engine's, then the record's `retry`. */
  readonly retry: RetryPolicy;
  readonly lifecycle: DeliveryLifecycle;
  /** The auth results last built from cached tokens (auth-chain.ts `authenticateNow`), reused while those tokens stay. */
  authMemo?: { results: AuthResults; used: readonly (CachedToken<Record<string, unknown>> | undefined)[] };
  /** Secret config values (fixed) and the auth results seen lately (bounded): scrubbed from all output. */
  private readonly configSecrets: string[] = [];
  private readonly tokenSecrets = new Set<string>();
  private redactFn: (text: string) => string;

  constructor(checked: CheckedRecord, deps: IntegrationDeps) {
    this.checked = checked;
    this.deps = deps;
    this.spec = checked.spec;
    const rpm = checked.record.rate_limit?.requests_per_minute;
    this.limiter = deps.limiter ?? (rpm ? new RateLimiter(rpm) : undefined);
    this.client = withTimeouts(deps.client, { ...checked.spec.timeouts, ...deps.timeouts });
    this.endpoint = deps.endpoint ? parseEndpoint(deps.endpoint) : undefined;
    this.retry = { ...checked.retry, ...deps.retry, ...checked.record.retry };
    this.lifecycle = deps.lifecycle ?? new DeliveryLifecycle();
    for (const f of checked.spec.secretFields) {
      const v = checked.record.config[f];
      if (typeof v === 'string' || typeof v === 'number') this.configSecrets.push(String(v));
    }
    this.redactFn = redactor(this.configSecrets);
    this.authKeys = this.computeAuthKeys();
  }

  get config(): Config {
    return this.checked.record.config;
  }

  /** Scrub every known secret from text meant for an outcome, log or error. */
  readonly redact = (text: string): string => this.redactFn(text);

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
  rememberSecret(v: unknown): void {
    if (typeof v === 'string' && v.length >= 4 && !this.tokenSecrets.has(v)) {
      // Bounded: tokens rotate, and only recent ones can turn up in vendor text. Config secrets stay.
      if (this.tokenSecrets.size >= 64) {
        const oldest = this.tokenSecrets.values().next().value;
        if (oldest !== undefined) this.tokenSecrets.delete(oldest);
      }
      this.tokenSecrets.add(v);
      this.redactFn = redactor([...this.configSecrets, ...this.tokenSecrets]);
    }
  }

  /** The request sent where the endpoint override says; `wire` is freshly rendered (never shared), so it is changed in place. */
  route(wire: WireRequest): WireRequest {
    if (!this.endpoint) return wire;
    const { url, forwardedHost } = applyEndpoint(wire.url, this.endpoint);
    if (!forwardedHost) return wire;
    wire.url = url;
    wire.headers['X-Forwarded-Host'] = forwardedHost;
    return wire;
  }

  /** One object per request, used as built (http.ts `exchange` takes the retry renderer beside it, never copies it). */
  exchangeOptions(rules: readonly CompiledRule[], vendorError: CompiledSpec['send']['vendorError'], success: (s: number) => boolean, bindings: Bindings, signal?: AbortSignal): ExchangeOptions {
    return { rules, vendorError, success, bindings, policy: this.retry, limiter: this.limiter, signal };
  }

  /** An event's body and preset fields (shared by deliver and preview); throws when a check fails. */
  /** The event's body as deliver and preview build it (synchronous when every expression is compiled). */
  buildBody(event: SignalEvent, config: Config): MaybePromise<BuiltBody> {
    return (this.bodies ??= bodyBuilder(this.spec.send, this.checked))(event, config);
  }

  /** The error for a vendor answer that is not a success, its vendor text redacted. */
  failure(reason: Reason, what: string, res: ExchangeResult): DeliveryError {
    const f = res.facts ?? {};
    const parts = [what];
    if (res.status !== undefined) parts.push(`HTTP ${res.status}`);
    if (f.network) parts.push(`network error ${f.network}`);
    if (f.vendor_code !== undefined) parts.push(`vendor code ${f.vendor_code}`);
    if (res.gave_up) parts.push(`gave up: ${res.gave_up.replace(/_/g, ' ')} after ${res.attempts.length} attempt(s)`);
    const msg = f.message ? redactAndCut(f.message, this.redact, 500) : undefined;
    return new DeliveryError(res.status === undefined && f.network ? REASONS.network : reason, this.redact(parts.join(', ')), {
      retryable: retryableRule(res.rule),
      ...(res.rule?.hint ? { hint: res.rule.hint } : {}),
      ...(res.status !== undefined ? { http_status: res.status } : {}),
      ...(f.vendor_code !== undefined ? { vendor_code: f.vendor_code } : {}),
      ...(msg ? { vendor_message: msg } : {}),
    });
  }

  /** Any error raised while delivering, as a failed result. */
  failedFrom(e: unknown): Result {
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
}

// console.log(ctx) must not print the record's secrets or the tokens it holds.
concealWhenPrinted(IntegrationContext, (c) => ({ integration: c.checked.record.name }));
