/** The single send: one event, one request (specs without a batch). */
import { REASONS } from '../errors.js';
import { redactValue } from '../policy/redact.js';
import { sendWithAuthResult } from './auth-chain.js';
import type { Config, IntegrationContext, Result } from './context.js';
import type { SignalEvent } from './event.js';
import type { OutcomeDetail } from './outcome.js';
import type { ExchangeResult } from './http.js';
import { renderRequestNow, value } from './requests.js';
import type { Bindings, CompiledExpr } from '../compile/expression.js';

export function sendOne(
  ctx: IntegrationContext,
  event: SignalEvent,
  config: Config,
  body: unknown,
  fields: Record<string, unknown>,
  detail: OutcomeDetail,
  signal: AbortSignal | undefined,
): Promise<Result> {
  const send = ctx.spec.send;
  // Aborted by the caller's signal or the engine's shutdown, through one listener on each, however many
  // deliveries share them.
  const link = ctx.lifecycle.signal(signal);
  // The body is encoded once, for the first attempt; a retry renders the URL and headers again and keeps
  // the encoded body, so the body object is not held while the request is in flight.
  let unsent: unknown = body;
  // Reactions on the exchange's promise rather than an async frame: less held per request in flight.
  return sendWithAuthResult(
    ctx,
    (auth) => {
      const wire = renderRequestNow('send', send.request, event, { config, event, fields, auth }, unsent);
      unsent = undefined;
      return wire;
    },
    ctx.exchangeOptions(send.rules, send.vendorError, send.success, { config, event }, link.signal),
    detail.attempts,
  ).then(
    (res) => {
      link.release();
      return sent(ctx, event, config, detail, res);
    },
    (e: unknown) => {
      link.release();
      throw e;
    },
  );
}

/** The outcome of the single send's exchange; synchronous unless a response expression is not. */
function sent(ctx: IntegrationContext, event: SignalEvent, config: Config, detail: OutcomeDetail, res: ExchangeResult): Result | Promise<Result> {
  const send = ctx.spec.send;
  // The exchange's own records, tagged with their stage (they are not shared): no copies per event.
  for (const a of res.attempts as OutcomeDetail['attempts']) {
    a.stage = 'send';
    detail.attempts.push(a);
  }
  const attempts = res.attempts.length;
  if (res.aborted) {
    const r: Result = { status: 'failed', reason: REASONS.interrupted, message: 'delivery was interrupted', retryable: true, attempts };
    if (res.possibly_duplicated) r.possibly_duplicated = true;
    return r;
  }
  // A later stage (a token for the retry) failed: its error, with what the attempts already left behind.
  if (res.error !== undefined) return withAttempts(ctx.failedFrom(res.error), attempts, res.possibly_duplicated);
  if (res.status === undefined || !send.success(res.status)) {
    return withAttempts(ctx.failedFrom(ctx.failure(REASONS.http, 'the vendor did not accept the event', res)), attempts, res.possibly_duplicated);
  }
  const out: Result = { status: 'delivered', http_status: res.status, attempts };
  if (res.possibly_duplicated) out.possibly_duplicated = true;
  const rb = { config, event };
  if (send.responseId) {
    const id = valueOrUndefined(send.responseId, res.json, rb);
    if (id instanceof Promise) return id.then((v) => kept(ctx, withResponseId(out, v), res, rb));
    withResponseId(out, id);
  }
  return send.keep.length ? kept(ctx, out, res, rb) : out;
}

function withResponseId(out: Result, id: unknown): Result {
  if (id !== undefined && id !== null) out.response_id = String(id);
  return out;
}

/** Fields kept from the vendor's answer (spec `success.keep`). */
async function kept(ctx: IntegrationContext, out: Result, res: ExchangeResult, rb: Bindings): Promise<Result> {
  const send = ctx.spec.send;
  if (send.keep.length) {
    out.response = {};
    // A kept value may be an object holding a token: every string in it is scrubbed.
    for (const k of send.keep) out.response[k.name] = redactValue(await value(k.expr, res.json, rb).catch(() => undefined), ctx.redact);
  }
  return out;
}

/** A failed result with the attempts made (its key order as a spread would leave it). */
function withAttempts(r: Result, attempts: number, possiblyDuplicated: boolean): Result {
  r.attempts = attempts;
  if (possiblyDuplicated) r.possibly_duplicated = true;
  return r;
}

/** An expression's value, or undefined when it fails; synchronous when the expression is (no promise per event). */
function valueOrUndefined(expr: CompiledExpr, input: unknown, bindings: Bindings): unknown {
  try {
    const v = expr.evaluate(input, bindings);
    return v instanceof Promise ? v.catch(() => undefined) : v;
  } catch {
    return undefined;
  }
}
