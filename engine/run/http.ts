/**
 * The transport: one got client per engine (keep-alive agents, timeouts), and `exchange`, which sends
 * one logical request and lets got's own retry machinery drive the attempts while the spec's error
 * rules decide each step through `calculateDelay` — retry after a policy delay, re-authenticate once,
 * or stop. The delay itself comes from the pure `retryDelay` policy.
 */
import { channel } from 'node:diagnostics_channel';
import http from 'node:http';
import https from 'node:https';
import got, { type CancelableRequest, type Got, type NormalizedOptions, type RequestError, type Response, type RetryObject } from 'got';
import type { CompiledRule, CompiledVendorError } from '../compile/spec.js';
import type { Bindings } from '../compile/expression.js';
import { matchRule, type FailureFacts } from '../policy/rules.js';
import { parseJson, responseFacts } from './response-facts.js';
import { parseNamedRetryHeader, parseRetryAfter, retryDelay, type RetryPolicy } from '../policy/retry-delay.js';
import type { Limiter } from '../store/types.js';
import { cancelOnAbort, forget } from './abort-fanout.js';
import { currentTrace, type TraceRecorder } from './trace.js';
import { currentSpan, endAttemptSpan, startAttemptSpan } from './otel.js';
import type { Span } from '@opentelemetry/api';
import type { CompiledTemplate } from '../compile/program.js';

/** Published with `{ wait_ms }` when a request waited for the rate limiter (metrics subscribe; free otherwise). */
export const RATE_LIMIT_WAIT_CHANNEL = 'signal-integrations:rate-limit-wait';
const rateLimitWaits = channel(RATE_LIMIT_WAIT_CHANNEL);

export interface WireRequest {
  stage: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body exactly as it goes on the wire. */
  body?: string;
  /** The spec's URL template it was rendered from (its path goes on OpenTelemetry spans, never the URL). */
  template?: CompiledTemplate;
}

export interface AttemptRecord {
  status?: number;
  network?: string;
  duration_ms: number;
}

export interface ExchangeResult {
  /** The final answer, when there was one. */
  status?: number;
  json?: unknown;
  /** Failure facts of the final attempt, and the rule that ended it, when it did not succeed. */
  facts?: FailureFacts;
  rule?: CompiledRule;
  /** Why retrying stopped early, when a retryable failure was given up on. */
  gave_up?: 'max_attempts' | 'max_elapsed' | 'retry_after_too_long' | 'reauth_once';
  attempts: AttemptRecord[];
  /**
   * An attempt's fate is unknown (the connection broke after the request was sent): the vendor may hold it,
   * so sending it again may duplicate it — whatever happened after that attempt.
   */
  possibly_duplicated: boolean;
  /** The caller's signal aborted the exchange. */
  aborted?: boolean;
  /**
   * The exchange stopped on an error of ours between attempts (the token stage failed when a retry needed
   * a token, or the retry's request could not be rendered). The attempts made and `possibly_duplicated`
   * still stand: the caller reports this error with them, never instead of them.
   */
  error?: unknown;
}

export interface ExchangeOptions {
  rules: readonly CompiledRule[];
  vendorError: CompiledVendorError;
  success: (status: number) => boolean;
  /** Bindings for the vendor_error expressions. */
  bindings: Bindings;
  policy: RetryPolicy;
  limiter?: Limiter;
  signal?: AbortSignal;
  now?: () => number;
}

/**
 * The request for a retry, rendered again. A wait may outlive the token the first attempt used, so every
 * retry takes the current one (and a URL built from an auth result follows it); with `reauth` (a rule
 * said so, at most once) the tokens the failed attempt used are dropped first. Throws when the token
 * stage fails. Given to `exchange` beside its options, not in them: the options object is then used as
 * built, never copied and extended per request.
 */
export type RequestForRetry = (reauth: boolean) => Promise<{ url: string; headers: Record<string, string> }>;

const NETWORK_CODES = new Set([
  'ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN', 'EHOSTUNREACH',
  'ECONNABORTED', 'EADDRINUSE', 'ENETDOWN', 'EHOSTDOWN', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_SOCKET',
]);

/** Per-exchange state travels in got's `context`, so the hooks and retry options below stay static. */
const STATE = 'signalExchange' as const;
const stateOf = (context: Record<string, unknown> | undefined): State | undefined => context?.[STATE] as State | undefined;

/** A client with an integration's timeouts: set once, not merged into every request's options. */
export function withTimeouts(client: Got, t: { connect_ms: number; response_ms: number }): Got {
  return client.extend({ timeout: { connect: t.connect_ms, response: t.response_ms, request: t.connect_ms + t.response_ms } });
}

export function createHttpClient(opts: { maxSockets?: number } = {}): { client: Got; close: () => void } {
  const maxSockets = opts.maxSockets ?? 128;
  // Idle sockets kept up to the pool's size: after a lull, a burst at the same concurrency reuses its
  // connections instead of opening all but 32 of them again (the server closes idle ones in its own time).
  const agentOpts = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets };
  const agent = { http: new http.Agent(agentOpts), https: new https.Agent(agentOpts) };
  const client = got.extend({
    agent,
    throwHttpErrors: false,
    followRedirect: false, // a redirect could leave the allowed hosts; vendors' APIs do not redirect
    responseType: 'text',
    decompress: true,
    http2: false,
    retry: {
      limit: Number.MAX_SAFE_INTEGER, // the spec's rules and the retry policy decide, in calculateDelay
      methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'],
      statusCodes: [],
      errorCodes: [...NETWORK_CODES],
      calculateDelay: (retry) => {
        const state = stateOf(retry.error.options?.context);
        return state ? state.calculateDelay(retry) : 0;
      },
    },
    hooks: {
      // Synchronous unless the attempt must wait (a retry's fresh request, the rate limiter): no promise per request.
      beforeRequest: [
        (options) => {
          noCacheOptions(options);
          return stateOf(options.context)?.beforeAttempt(options);
        },
      ],
      beforeRetry: [
        (error) => {
          stateOf(error.options?.context)?.attemptFailed(error);
        },
      ],
    },
  });
  return {
    client,
    close: () => {
      agent.http.destroy();
      agent.https.destroy();
    },
  };
}

/**
 * No HTTP cache is used, so its options are emptied (got's public setter) before got builds Node's request
 * options. got spreads `cacheOptions` (four keys, all undefined) into an object literal of some thirty
 * more properties; on Node 20's V8 a literal that extends a spread copy gets new hidden classes on every
 * call: ~35 µs per request, most of it garbage collection (measured: `npm run bench`, README). Spreading an
 * empty object does not.
 */
function noCacheOptions(options: NormalizedOptions): void {
  if (!options.cache) options.cacheOptions = {};
}

function networkCode(error: RequestError): string | undefined {
  const code = error.code ?? (error.cause as { code?: string } | undefined)?.code;
  if (code && NETWORK_CODES.has(code)) return code;
  if (error.name === 'TimeoutError') return 'ETIMEDOUT';
  if (error.name === 'ReadError' || error.name === 'UploadError') return code ?? 'ECONNRESET';
  return undefined;
}

interface State {
  calculateDelay(retry: RetryObject): Promise<number>;
  beforeAttempt(options: NormalizedOptions): Promise<void> | undefined;
  attemptFailed(error: RequestError): void;
}

/**
 * One logical request's attempts. An instance (methods on its prototype, no closures per request) is
 * what got's hooks and `calculateDelay` reach through `context`.
 */
class Exchange implements State {
  readonly attempts: AttemptRecord[] = [];
  readonly started: number;
  attemptStart: number;
  reauthPending = false;
  reauthDone = false;
  retrying = false;
  facts?: FailureFacts;
  rule?: CompiledRule;
  gave_up?: ExchangeResult['gave_up'];
  possiblyDuplicated = false;
  sentAndBroke = false;
  /** An attempt started (its request may be on the wire) and has not ended yet. */
  inAttempt = false;
  fatal?: unknown;
  /** Set only when the delivery is traced (trace.ts): the recorder and this request's stage. */
  trace?: { rec: TraceRecorder; stage: string; delay?: number };
  /** Set only when a delivery span records (otel.ts): the request, and the span of the attempt in flight. */
  otel?: { parent: Span; req: WireRequest; span?: Span };

  constructor(
    readonly opts: ExchangeOptions,
    readonly now: () => number,
    readonly requestForRetry: RequestForRetry | undefined,
  ) {
    this.started = this.attemptStart = now();
  }

  async calculateDelay({ attemptCount, error, retryAfter }: RetryObject): Promise<number> {
    const opts = this.opts;
    if (opts.signal?.aborted) return 0;
    try {
      const response = error.response;
      let facts: FailureFacts;
      let retryAfterMs: number | undefined;
      if (response) {
        const r = await responseFacts(response.statusCode, typeof response.body === 'string' ? response.body : undefined, opts.vendorError, opts.bindings, response.headers);
        facts = r.facts;
        const named = opts.vendorError.retryAfterHeader;
        const header =
          (named ? parseNamedRetryHeader(response.headers[named.name], named.format, this.now()) : undefined) ?? parseRetryAfter(response.headers['retry-after'], this.now());
        retryAfterMs = header ?? (r.retry_after_s !== undefined ? r.retry_after_s * 1000 : retryAfter);
      } else {
        const code = networkCode(error);
        if (!code) {
          this.facts = { message: error.message };
          return 0; // not a network failure (bad header, aborted...): nothing to retry
        }
        facts = { network: code, message: error.message };
        // The request left us and the connection broke: the vendor may have acted on it.
        if (error.timings?.upload !== undefined) this.sentAndBroke = true;
      }
      this.facts = facts;
      const rule = matchRule(opts.rules, facts);
      this.rule = rule;
      if (!rule || rule.action === 'fail' || rule.action === 'split') return 0;
      if (rule.action === 'reauth') {
        if (this.reauthDone || !this.requestForRetry) {
          this.gave_up = 'reauth_once';
          return 0;
        }
        this.reauthPending = true;
        return 1;
      }
      const state = { attempt: attemptCount, elapsed_ms: this.now() - this.started, ...(retryAfterMs !== undefined ? { retry_after_ms: retryAfterMs } : {}) };
      const delay = retryDelay(opts.policy, state);
      if (delay === undefined) {
        this.gave_up =
          attemptCount >= opts.policy.max_attempts ? 'max_attempts' : retryAfterMs !== undefined && retryAfterMs > opts.policy.max_retry_after_ms ? 'retry_after_too_long' : 'max_elapsed';
        return 0;
      }
      if (this.sentAndBroke) this.possiblyDuplicated = true;
      if (this.trace) this.trace.delay = delay;
      return Math.max(1, delay); // got reads 0 as "stop"
    } catch (e) {
      this.fatal = e;
      return 0;
    }
  }

  /** Any attempt that broke after it was sent leaves the event's fate unknown, whatever comes after it. */
  unknownFate(): boolean {
    return this.possiblyDuplicated || this.sentAndBroke;
  }

  finishAttempt(status: number | undefined, network: string | undefined, body?: unknown, final = true): void {
    const rec: AttemptRecord = { duration_ms: this.now() - this.attemptStart };
    if (status !== undefined) rec.status = status;
    if (network !== undefined) rec.network = network;
    this.attempts.push(rec);
    if (this.trace) traceAttempt(this, rec, body, final);
    if (this.otel?.span) {
      const failed = status === undefined || !this.opts.success(status);
      endAttemptSpan(this.otel.span, status, network, !final ? (this.reauthPending ? 'reauth' : 'retry') : failed ? 'stop' : undefined, failed);
      this.otel.span = undefined;
    }
  }

  startAttempt(options: NormalizedOptions): void {
    this.attemptStart = this.now();
    this.inAttempt = true;
    const o = this.otel;
    if (o) o.span = startAttemptSpan(o.parent, o.req.stage, o.req.method, o.req.template, options.url instanceof URL ? options.url : undefined, this.attempts.length);
  }

  /** Synchronous unless the attempt must wait (a retry's fresh request, the rate limiter): no promise per request. */
  beforeAttempt(options: NormalizedOptions): Promise<void> | undefined {
    if ((this.retrying && this.requestForRetry) || this.opts.limiter) return this.beforeAttemptWaiting(options);
    this.startAttempt(options);
    return undefined;
  }

  async beforeAttemptWaiting(options: NormalizedOptions): Promise<void> {
    const opts = this.opts;
    if (this.retrying && this.requestForRetry) {
      const reauth = this.reauthPending;
      this.reauthPending = false;
      if (reauth) this.reauthDone = true;
      let fresh: { url: string; headers: Record<string, string> };
      try {
        fresh = await this.requestForRetry(reauth);
      } catch (e) {
        this.fatal = e; // the token stage failed: its own outcome, not this request's
        throw e;
      }
      for (const [k, v] of Object.entries(fresh.headers)) options.headers[k.toLowerCase()] = v;
      if (fresh.url !== options.url?.toString()) options.url = new URL(fresh.url);
    }
    if (opts.limiter) {
      const asked = this.now();
      try {
        await opts.limiter.acquire(opts.signal);
        if (rateLimitWaits.hasSubscribers && this.now() > asked) rateLimitWaits.publish({ wait_ms: this.now() - asked });
      } catch (e) {
        if (!opts.signal?.aborted) this.fatal = e; // the shared limiter failed (Redis away): its own outcome
        throw e;
      }
    }
    this.startAttempt(options);
  }

  attemptFailed(error: RequestError): void {
    this.inAttempt = false;
    this.retrying = true;
    this.finishAttempt(error.response?.statusCode, error.response ? undefined : networkCode(error), this.trace && error.response?.body, false);
  }

  /** The final answer: synchronous for a success, which needs no vendor_error expression. */
  answered(statusCode: number, body: string, headers: Record<string, string | string[] | undefined>): ExchangeResult | Promise<ExchangeResult> {
    this.finishAttempt(statusCode, undefined, this.trace && body);
    const result: ExchangeResult = { status: statusCode, json: parseJson(body), attempts: this.attempts, possibly_duplicated: this.unknownFate() };
    return this.opts.success(statusCode) ? result : this.notAccepted(result, statusCode, body, headers);
  }

  /** A final answer that is not a success: the rule that stopped the retries, or the first that matches now. */
  async notAccepted(result: ExchangeResult, statusCode: number, body: string, headers: Record<string, string | string[] | undefined>): Promise<ExchangeResult> {
    const opts = this.opts;
    const r = this.facts?.status === statusCode && this.facts ? { facts: this.facts } : await responseFacts(statusCode, body, opts.vendorError, opts.bindings, headers);
    result.facts = r.facts;
    const rule = this.rule ?? matchRule(opts.rules, r.facts);
    if (rule) result.rule = rule;
    if (this.gave_up) result.gave_up = this.gave_up;
    return result;
  }

  /** The exchange ended without a final answer. */
  broke(error: RequestError): ExchangeResult {
    const opts = this.opts;
    if (this.fatal) {
      // The attempt that was in flight ended with the error of ours (its span must end too).
      if (this.otel?.span) endAttemptSpan(this.otel.span, error.response?.statusCode, undefined, 'stop', true);
      return { attempts: this.attempts, possibly_duplicated: this.unknownFate(), error: this.fatal, facts: { message: 'stopped' } };
    }
    if (opts.signal?.aborted) {
      // An attempt cut off in flight counts, and if its request had gone out the vendor may hold it.
      if (this.inAttempt) {
        this.finishAttempt(undefined, undefined);
        if (error.timings?.upload !== undefined) this.sentAndBroke = true;
      }
      return { attempts: this.attempts, possibly_duplicated: this.unknownFate(), aborted: true, facts: { message: 'aborted' } };
    }
    const code = networkCode(error);
    this.finishAttempt(undefined, code);
    const facts: FailureFacts = this.facts ?? { message: error.message };
    if (code) facts.network = code;
    const result: ExchangeResult = { facts, attempts: this.attempts, possibly_duplicated: this.unknownFate() };
    const rule = this.rule ?? (code ? matchRule(opts.rules, facts) : undefined);
    if (rule) result.rule = rule;
    if (this.gave_up) result.gave_up = this.gave_up;
    return result;
  }
}

interface RequestOptions {
  method: string;
  headers: Record<string, string>;
  body?: string;
  context: { [STATE]: State };
}

export function exchange(client: Got, req: WireRequest, opts: ExchangeOptions, requestForRetry?: RequestForRetry): Promise<ExchangeResult> {
  const x = new Exchange(opts, opts.now ?? Date.now, requestForRetry);
  const rec = currentTrace();
  if (rec) {
    x.trace = { rec, stage: req.stage };
    rec.request(req.stage, req.method, req.url, req.headers, req.body);
  }
  const parent = currentSpan();
  if (parent) x.otel = { parent, req };
  const options: RequestOptions = { method: req.method, headers: req.headers, context: { [STATE]: x } };
  if (req.body !== undefined) options.body = req.body;
  // The signal cancels got's promise (the request, a retry's wait) rather than going to got itself.
  const signal = opts.signal;
  let pending: CancelableRequest<Response<string>>;
  try {
    pending = client(req.url, options as Parameters<Got>[1] & { isStream?: false }) as CancelableRequest<Response<string>>;
  } catch (e) {
    return Promise.resolve(x.broke(e as RequestError));
  }
  if (signal) cancelOnAbort(signal, pending);
  // Two reactions rather than an async frame: less held per request in flight.
  return pending.then(
    (response) => {
      if (signal) forget(signal, pending);
      return x.answered(response.statusCode, response.body, response.headers);
    },
    (e: unknown) => {
      if (signal) forget(signal, pending);
      return x.broke(e as RequestError);
    },
  );
}

/** A traced attempt (trace.ts): its answer and what the exchange decided after it, and why. */
function traceAttempt(x: Exchange, rec: AttemptRecord, body: unknown, final: boolean): void {
  const t = x.trace!;
  const a: Parameters<TraceRecorder['attempt']>[0] = { stage: t.stage, duration_ms: rec.duration_ms };
  if (rec.status !== undefined) a.status = rec.status;
  if (rec.network !== undefined) a.network = rec.network;
  if (typeof body === 'string' && body.length) a.response = body;
  const why = x.rule ? `rule ${x.rule.origin} (${x.rule.action})${x.facts?.status !== undefined ? ` on HTTP ${x.facts.status}` : x.facts?.network ? ` on ${x.facts.network}` : ''}` : undefined;
  if (!final) {
    a.decision = x.reauthPending ? { action: 'reauth', ...(why ? { why } : {}) } : { action: 'retry', ...(t.delay !== undefined ? { delay_ms: t.delay } : {}), ...(why ? { why } : {}) };
  } else if (rec.status === undefined || !x.opts.success(rec.status)) {
    const reason = x.gave_up ? `gave up: ${x.gave_up}` : why ?? (rec.status === undefined && !rec.network ? 'aborted' : 'no rule retries it');
    a.decision = { action: 'stop', why: reason };
  }
  t.rec.attempt(a);
}
