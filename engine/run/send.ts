/** The single send: one event, one request (specs without a batch). */
import { REASONS } from '../errors.js';
import { redactValue } from '../policy/redact.js';
import { sendWithAuth } from './auth-chain.js';
import type { Config, IntegrationContext, Result } from './context.js';
import type { SignalEvent } from './event.js';
import type { OutcomeDetail } from './outcome.js';
import { renderRequest, value } from './requests.js';

export async function sendOne(
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
  let res;
  try {
    ({ res } = await sendWithAuth(
      ctx,
      (auth) => renderRequest('send', send.request, event, { config, event, fields, auth }, body),
      { ...ctx.exchangeOptions(send.rules, send.vendorError, send.success, { config, event }), signal: link.signal },
    ));
  } finally {
    link.release();
  }
  if (res.aborted) {
    detail.attempts.push(...res.attempts.map((a) => ({ ...a, stage: 'send' })));
    return { status: 'failed', reason: REASONS.interrupted, message: 'delivery was interrupted', retryable: true, attempts: res.attempts.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
  }
  detail.attempts.push(...res.attempts.map((a) => ({ ...a, stage: 'send' })));
  const common = { attempts: res.attempts.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
  // A later stage (a token for the retry) failed: its error, with what the attempts already left behind.
  if (res.error !== undefined) return { ...ctx.failedFrom(res.error), ...common };
  if (res.status === undefined || !send.success(res.status)) {
    return { ...ctx.failedFrom(ctx.failure(REASONS.http, 'the vendor did not accept the event', res)), ...common };
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
    for (const k of send.keep) out.response[k.name] = redactValue(await value(k.expr, res.json, rb).catch(() => undefined), ctx.redact);
  }
  return out;
}
