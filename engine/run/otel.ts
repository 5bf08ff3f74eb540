/**
 * OpenTelemetry spans, through `@opentelemetry/api` only: a no-op unless the embedding runtime registers an
 * SDK (the CLI's `worker --otel` does, cli/otel.ts). Spans:
 *   signal.enqueue   PRODUCER  one per enqueue call; its context travels on every message it queued
 *   signal.deliver   CONSUMER (from a queue) / INTERNAL  one per delivery (one queue attempt of one event)
 *   signal.batch     INTERNAL  one per batch request (batching specs), linked to each event's delivery span
 *   <METHOD>         CLIENT    one per HTTP attempt (stage auth/send/poll), child of the delivery or batch span
 *
 * What a span may carry is decided here and nowhere else: ids (integration, event, job), the vendor's and
 * the event's names, statuses, reasons, counts, the host and the URL's path template as the spec writes it
 * (placeholders, never their values). Never a URL as sent (its path or query may carry personal data), a
 * header, a body, an outcome's message or the vendor's message (they may echo the event), an exception.
 *
 * Off (no SDK, or a span the sampler drops) costs one `startSpan` per delivery that hands back a
 * non-recording span: nothing else is allocated, no scope is entered.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span } from '@opentelemetry/api';
import type { CompiledTemplate } from '../compile/program.js';
import type { Outcome } from './outcome.js';

export const TRACER_NAME = 'signal-integrations';
const tracer = trace.getTracer(TRACER_NAME);

/** The delivery (or batch) span the code running now belongs to, when one is recording. */
const scope = new AsyncLocalStorage<Span | undefined>();

export function currentSpan(): Span | undefined {
  return scope.getStore();
}

/** Run `fn` under `span`: our HTTP attempts find it in our own scope, other instrumentation in the OTel context. */
export function inSpan<T>(span: Span | undefined, fn: () => T): T {
  if (!span) return scope.getStore() ? scope.run(undefined, fn) : fn();
  return scope.run(span, () => context.with(trace.setSpan(context.active(), span), fn));
}

/** What a delivery span is started from (DeliverOptions.otel). */
export interface DeliverySpanOptions {
  /** The context to continue (the enqueue's, carried on the queued message); default: the active one. */
  parent?: Context;
  /** The queue attempt (1-based), when the event came from a queue. */
  attempt?: number;
  /** The queue's job id. */
  job_id?: string;
}

export interface DeliveryIdentity {
  readonly id: string | undefined;
  readonly vendor: string;
}

/** A recording delivery span, or undefined (no SDK, not sampled): the caller then does nothing more. */
export function startDeliverySpan(integration: DeliveryIdentity, event: unknown, opts: DeliverySpanOptions | undefined): Span | undefined {
  const fromQueue = opts?.attempt !== undefined;
  const span = tracer.startSpan('signal.deliver', { kind: fromQueue ? SpanKind.CONSUMER : SpanKind.INTERNAL }, opts?.parent ?? context.active());
  if (!span.isRecording()) return undefined;
  const a: Attributes = { 'signal.vendor': integration.vendor };
  if (integration.id !== undefined) a['signal.integration.id'] = integration.id;
  const e = event as { event_id?: unknown; event?: unknown } | null;
  if (e && typeof e === 'object') {
    if (typeof e.event_id === 'string') a['signal.event.id'] = e.event_id;
    if (typeof e.event === 'string') a['signal.event.name'] = e.event;
  }
  if (fromQueue) a['signal.queue.attempt'] = opts!.attempt!;
  if (opts?.job_id !== undefined) a['messaging.message.id'] = opts.job_id;
  span.setAttributes(a);
  return span;
}

/** Ends a delivery span with its outcome: status, reason, HTTP status, attempts, the duplicate flag. */
export function endDeliverySpan(span: Span, o: Outcome): void {
  const a: Attributes = { 'signal.outcome.status': o.status, 'signal.http.attempts': o.attempts, 'signal.possibly_duplicated': o.possibly_duplicated === true };
  if (o.reason !== undefined) a['signal.outcome.reason'] = o.reason;
  if (o.http_status !== undefined) a['http.response.status_code'] = o.http_status;
  if (o.retryable !== undefined) a['signal.outcome.retryable'] = o.retryable;
  if (o.batch_size !== undefined) a['signal.batch.size'] = o.batch_size;
  if (o.status === 'failed') {
    a['error.type'] = o.reason ?? 'failed';
    span.setStatus({ code: SpanStatusCode.ERROR, message: o.reason ?? 'failed' });
  }
  span.setAttributes(a);
  span.end();
}

/** A delivery that threw (a caller's hook): the span ends as an error, without the error's text. */
export function endDeliverySpanThrown(span: Span): void {
  span.setAttributes({ 'error.type': 'thrown' });
  span.setStatus({ code: SpanStatusCode.ERROR, message: 'thrown' });
  span.end();
}

/** Links at most this many events' delivery spans to one batch span (the SDK's default link limit). */
const MAX_BATCH_LINKS = 128;

/** A batch request's span, linked to the delivery spans of its events; undefined when none records. */
export function startBatchSpan(spans: readonly (Span | undefined)[], size: number): Span | undefined {
  const links: Link[] = [];
  for (const s of spans) if (s && links.length < MAX_BATCH_LINKS) links.push({ context: s.spanContext() });
  if (!links.length) return undefined;
  // A root of its own: a batch belongs to many events' traces at once, so to none of them as a child.
  const span = tracer.startSpan('signal.batch', { kind: SpanKind.INTERNAL, links, attributes: { 'signal.batch.size': size } }, ROOT_CONTEXT);
  return span.isRecording() ? span : undefined;
}

export function endBatchSpan(span: Span, failed: string | undefined): void {
  if (failed !== undefined) {
    span.setAttributes({ 'error.type': failed });
    span.setStatus({ code: SpanStatusCode.ERROR, message: failed });
  }
  span.end();
}

/** One HTTP attempt's span, child of the delivery or batch span in scope. */
export function startAttemptSpan(parent: Span, stage: string, method: string, template: CompiledTemplate | undefined, url: URL | undefined, resend: number): Span {
  const a: Attributes = { 'http.request.method': method, 'signal.stage': stage };
  if (resend > 0) a['http.request.resend_count'] = resend;
  if (template) a['url.template'] = pathTemplate(template);
  if (url) {
    a['server.address'] = url.hostname;
    a['server.port'] = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    a['url.scheme'] = url.protocol.replace(/:$/, '');
  }
  return tracer.startSpan(template ? `${method} ${a['url.template'] as string}` : method, { kind: SpanKind.CLIENT, attributes: a }, trace.setSpan(ROOT_CONTEXT, parent));
}

/** Ends an HTTP attempt's span: its status (or network error) and what was decided after it. */
export function endAttemptSpan(span: Span, status: number | undefined, network: string | undefined, decision: 'retry' | 'reauth' | 'stop' | undefined, failed: boolean): void {
  const a: Attributes = {};
  if (status !== undefined) a['http.response.status_code'] = status;
  if (decision) a['signal.decision'] = decision;
  if (failed) {
    a['error.type'] = network ?? (status !== undefined ? String(status) : 'aborted');
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.setAttributes(a);
  span.end();
}

const paths = new WeakMap<CompiledTemplate, string>();

/**
 * The URL template's path as the spec writes it — `/data/v1/async/{$response.requestId}/status`: the
 * placeholders, never their values — without its origin and query (a query's values may be personal).
 */
export function pathTemplate(t: CompiledTemplate): string {
  let p = paths.get(t);
  if (p === undefined) {
    let s = t.source;
    if (t.origin) s = s.slice(closingBrace(s) + 1);
    else {
      const scheme = s.indexOf('://');
      if (scheme >= 0) {
        const slash = s.indexOf('/', scheme + 3);
        s = slash >= 0 ? s.slice(slash) : '/';
      }
    }
    const q = s.search(/[?#]/);
    p = (q >= 0 ? s.slice(0, q) : s) || '/';
    paths.set(t, p);
  }
  return p;
}

/** The end of the template's first placeholder (`{...}`, braces nested). */
function closingBrace(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return s.length - 1;
}

/** The W3C fields a queued message keeps; baggage is dropped (it may carry whatever the caller put in it). */
const CARRIED = ['traceparent', 'tracestate'] as const;

/**
 * The trace context to store on queued messages, through the global propagator (the SDK's default is
 * W3C trace context): undefined when there is none to carry (no SDK, no span).
 */
export function injectContext(ctx: Context = context.active()): Record<string, string> | undefined {
  if (!trace.getSpan(ctx)) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  let out: Record<string, string> | undefined;
  for (const k of CARRIED) if (typeof carrier[k] === 'string') (out ??= {})[k] = carrier[k];
  return out;
}

/** The context a queued message carries (its enqueue's), or undefined when it carries none. */
export function extractContext(carrier: unknown): Context | undefined {
  if (!carrier || typeof carrier !== 'object') return undefined;
  const c: Record<string, string> = {};
  for (const k of CARRIED) {
    const v = (carrier as Record<string, unknown>)[k];
    if (typeof v === 'string' && v.length <= 512) c[k] = v;
  }
  if (!c.traceparent) return undefined;
  return propagation.extract(ROOT_CONTEXT, c);
}

/** Run `fn` inside a `signal.enqueue` span (when one records): it gets the context to carry on its messages. */
export async function enqueueSpan<T>(integration: string, count: number, fn: (carried: Record<string, string> | undefined) => Promise<T>): Promise<T> {
  const span = tracer.startSpan('signal.enqueue', { kind: SpanKind.PRODUCER }, context.active());
  if (!span.isRecording()) return fn(injectContext());
  span.setAttributes({ 'signal.integration.id': integration, 'messaging.operation.type': 'send', 'messaging.batch.message_count': count });
  try {
    const out = await fn(injectContext(trace.setSpan(context.active(), span)));
    return out;
  } catch (e) {
    span.setAttributes({ 'error.type': 'enqueue_failed' });
    span.setStatus({ code: SpanStatusCode.ERROR });
    throw e;
  } finally {
    span.end();
  }
}
