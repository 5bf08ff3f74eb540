/**
 * Opt-in per-event trace: what one delivery did — the input event, every request as sent (auth, send,
 * poll), every HTTP attempt with its status or network error, duration, the retry decision and why, the
 * vendor's answers, and the outcome. Off unless a caller passes `trace` in DeliverOptions: then the
 * delivery runs inside an AsyncLocalStorage scope and `exchange` (http.ts) records into it. Without it
 * nothing is allocated: `exchange` reads an AsyncLocalStorage that was never entered (a flag check).
 *
 * Redaction: nothing is redacted while recording (a token is only known as a secret once its auth stage
 * answered); the trace is redacted once, when the outcome is final, with the integration's redactor
 * (every config secret and every token it has seen, in all their encodings — the same scrubbing outcomes
 * get), plus credential headers (Authorization, Cookie, *-api-key, *-token...) and token/secret/password
 * fields of JSON bodies replaced whole, as `preview` shows them. Bodies are cut at TRACE_BODY_MAX
 * characters after redaction (so a secret is never cut in half and left readable).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { REDACTED, redactAndCut } from '../policy/redact.js';
import type { Outcome } from './outcome.js';

/** Request and response bodies in a trace are cut at this many characters (4 KiB), after redaction. */
export const TRACE_BODY_MAX = 4096;

export interface TraceRequest {
  /** `auth.<stage>`, `send`, `poll`... */
  stage: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
}

export interface TraceAttempt {
  stage: string;
  status?: number;
  network?: string;
  duration_ms: number;
  /** The vendor's answer to this attempt (redacted, cut), when there was one. */
  response?: string;
  /** What happened next: `retry` (after delay_ms), `reauth`, or `stop`; `why` says which rule or limit. */
  decision?: { action: 'retry' | 'reauth' | 'stop'; delay_ms?: number; why?: string };
}

/** One delivery's trace (one `Integration.deliver`), redacted. */
export interface EventTrace {
  at: string;
  event: unknown;
  requests: TraceRequest[];
  attempts: TraceAttempt[];
  outcome: Pick<Outcome, 'status' | 'reason' | 'message' | 'hint' | 'http_status' | 'vendor_code' | 'vendor_message' | 'retryable' | 'attempts' | 'duration_ms' | 'response_id'>;
}

/** What DeliverOptions.trace receives once the outcome is final. */
export type TraceSink = (trace: EventTrace) => void;

/** The raw recording (secrets still in it): never leaves this module unredacted. */
export class TraceRecorder {
  readonly requests: TraceRequest[] = [];
  readonly attempts: TraceAttempt[] = [];
  readonly at = new Date().toISOString();
  constructor(readonly event: unknown) {}

  request(stage: string, method: string, url: string, headers: Record<string, string>, body: string | undefined): void {
    this.requests.push({ stage, method, url, headers: { ...headers }, body: body ?? null });
  }

  attempt(a: TraceAttempt): void {
    this.attempts.push(a);
  }

  /** The trace as stored and printed: every string scrubbed, credential headers and fields replaced, bodies cut. */
  finish(outcome: Outcome, redact: (text: string) => string): EventTrace {
    const o: EventTrace['outcome'] = { status: outcome.status, attempts: outcome.attempts, duration_ms: outcome.duration_ms };
    for (const k of ['reason', 'message', 'hint', 'http_status', 'vendor_code', 'vendor_message', 'retryable', 'response_id'] as const) {
      const v = outcome[k];
      if (v !== undefined) (o as Record<string, unknown>)[k] = typeof v === 'string' ? redact(v) : v;
    }
    return {
      at: this.at,
      event: scrub(this.event, redact),
      requests: this.requests.map((r) => ({
        stage: r.stage,
        method: r.method,
        url: redact(r.url),
        headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, SECRET_HEADER.test(k) ? REDACTED : redact(v)])),
        body: r.body === null ? null : cutBody(r.body, redact),
      })),
      attempts: this.attempts.map((a) => (a.response === undefined ? a : { ...a, response: cutBody(a.response, redact) })),
      outcome: o,
    };
  }
}

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie|set-cookie)$|api[-_]?key|token|secret|password|signature/i;
const SECRET_FIELD = /^(access_token|refresh_token|id_token|client_secret|password|assertion|code_verifier|token|secret|api_key|apikey)$/i;

/** A JSON body with credential fields replaced whole, then scrubbed; a form body's credential fields too. */
function cutBody(body: string, redact: (text: string) => string): string {
  let text = body;
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object') text = JSON.stringify(scrub(parsed, redact));
  } catch {
    if (/^[^\s=&]+=[^&]*(&[^\s=&]+=[^&]*)*$/.test(body)) {
      text = body
        .split('&')
        .map((p) => {
          const i = p.indexOf('=');
          return SECRET_FIELD.test(decodeURIComponentSafe(p.slice(0, i))) ? `${p.slice(0, i)}=${encodeURIComponent(REDACTED)}` : p;
        })
        .join('&');
    }
  }
  return redactAndCut(text, redact, TRACE_BODY_MAX);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** A JSON-like copy: credential fields replaced, every string scrubbed. */
function scrub(v: unknown, redact: (text: string) => string, depth = 0): unknown {
  if (typeof v === 'string') return redact(v);
  if (v === null || typeof v !== 'object' || depth > 32) return v;
  if (Array.isArray(v)) return v.map((x) => scrub(x, redact, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    Object.defineProperty(out, k, { value: SECRET_FIELD.test(k) && x !== null && typeof x !== 'object' ? REDACTED : scrub(x, redact, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const scope = new AsyncLocalStorage<TraceRecorder>();

/** The recorder of the delivery running now, when it is traced (http.ts asks once per exchange). */
export function currentTrace(): TraceRecorder | undefined {
  return scope.getStore();
}

/** Run `fn` with a recorder in scope: every exchange it starts records into it. */
export function traced<T>(recorder: TraceRecorder, fn: () => T): T {
  return scope.run(recorder, fn);
}
