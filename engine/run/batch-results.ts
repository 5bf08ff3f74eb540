/**
 * Reading a batch answer's per-item verdicts (`results`, `item_errors`, `poll.errors`) into one result per
 * item. An answer that does not fit the spec throws ResultsInvalid: then no item may read as delivered.
 */
import { REASONS } from '../errors.js';
import type { CompiledExpr } from '../compile/expression.js';
import type { CompiledBatch } from '../compile/spec.js';
import type { IntegrationContext, Result } from './context.js';
import { value } from './requests.js';

/** The vendor answered, but its answer does not fit the spec's `results` / `poll` expressions. */
export class ResultsInvalid extends Error {}

export const RESULTS_HINT =
  'The vendor accepted this batch (it may hold some or all of its items), but its answer does not fit the spec, so ' +
  'which items it rejected is unknown. Fix the expression named in the message (a JSONata path that matches one ' +
  'element yields that element, not a one-element array: append [] to keep an array) before sending these events again.';

export function kindOf(v: unknown): string {
  return v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? '';
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** An expression over the vendor's answer whose failure to evaluate makes the answer unreadable. */
export async function evaluated(key: string, expr: CompiledExpr, input: unknown, bindings: Parameters<typeof value>[2]): Promise<unknown> {
  try {
    return await value(expr, input, bindings);
  } catch (e) {
    throw new ResultsInvalid(`${key} could not be evaluated: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** `results`: one entry per item sent, in order; anything else is an answer the spec cannot read. */
export async function readResults(ctx: IntegrationContext, r: NonNullable<CompiledBatch['results']>, body: unknown, out: Result[], common: Partial<Result>, status: number): Promise<void> {
  const rb = { config: ctx.config };
  const perItem = await evaluated('send.batch.results.items', r.items!, body, rb);
  if (!Array.isArray(perItem)) throw new ResultsInvalid(`send.batch.results.items must evaluate to an array, got ${kindOf(perItem)}`);
  if (perItem.length !== out.length) {
    throw new ResultsInvalid(`send.batch.results.items must have one entry per item sent (${out.length}), got ${perItem.length}`);
  }
  for (const [i, entry] of perItem.entries()) {
    const ok = r.ok ? (await value(r.ok, entry, rb).catch(() => false)) === true : true;
    if (ok) {
      const id = r.id ? await value(r.id, entry, rb).catch(() => undefined) : undefined;
      if (id !== undefined && id !== null) out[i]!.response_id = String(id);
    } else {
      out[i] = await itemFailure(ctx, entry, r, common, status);
    }
  }
}

/**
 * Entries that each name a rejected item by its 0-based index (`poll.errors`, `item_errors.list`): every
 * index must be an integer in range, or the answer cannot be trusted at all. An index named again (one item,
 * several errors) adds its message to that item's one failure.
 */
export async function rejectByIndex(
  ctx: IntegrationContext,
  key: string,
  entries: unknown[],
  r: { index: CompiledExpr; message?: CompiledExpr; code?: CompiledExpr; hint?: string },
  rejected: Set<number>,
  out: Result[],
  common: Partial<Result>,
  status: number,
): Promise<void> {
  const config = ctx.config;
  for (const entry of entries) {
    const index = await evaluated(key, r.index, entry, { config });
    if (typeof index !== 'number' || !Number.isInteger(index)) {
      throw new ResultsInvalid(`${key} must evaluate to an integer, got ${kindOf(index)} ${shown(index)}`);
    }
    if (index < 0 || index >= out.length) throw new ResultsInvalid(`${key} ${index} is out of range for a batch of ${out.length} item(s) (0 to ${out.length - 1})`);
    const failure = await itemFailure(ctx, entry, r, common, status);
    const earlier = rejected.has(index) ? out[index]! : undefined;
    if (earlier?.message !== undefined && failure.message !== undefined) {
      const seen = earlier.message.split('; ');
      if (!seen.includes(failure.message)) earlier.message = `${earlier.message}; ${failure.message}`;
      continue;
    }
    rejected.add(index);
    out[index] = failure;
  }
}

/** `item_errors`: the answer lists only the rejected items, by index (absent or null: none rejected). */
export async function readItemErrors(ctx: IntegrationContext, e: NonNullable<CompiledBatch['itemErrors']>, list: unknown, out: Result[], common: Partial<Result>, status: number): Promise<Set<number>> {
  if (list !== undefined && list !== null && !Array.isArray(list)) throw new ResultsInvalid(`send.batch.item_errors.list must evaluate to an array, got ${kindOf(list)}`);
  const rejected = new Set<number>();
  await rejectByIndex(ctx, 'send.batch.item_errors.index', (list ?? []) as unknown[], e, rejected, out, common, status);
  return rejected;
}

export async function itemFailure(ctx: IntegrationContext, entry: unknown, r: { message?: CompiledExpr; code?: CompiledExpr; hint?: string }, common: Partial<Result>, status: number): Promise<Result> {
  const config = ctx.config;
  const message = r.message ? await value(r.message, entry, { config }).catch(() => undefined) : undefined;
  const code = r.code ? await value(r.code, entry, { config }).catch(() => undefined) : undefined;
  return {
    ...common,
    status: 'failed',
    reason: REASONS.itemRejected,
    message: ctx.redact(typeof message === 'string' ? message : 'the vendor rejected this item of the batch'),
    retryable: false,
    http_status: status,
    ...(typeof code === 'string' || typeof code === 'number' ? { vendor_code: code } : {}),
    ...(r.hint ? { hint: r.hint } : {}),
    attempts: common.attempts ?? 1,
  };
}
