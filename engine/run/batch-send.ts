/**
 * The batch send: events are queued into batches, each batch goes out in one request, and the answer
 * (and, for vendors that work asynchronously, the polled processing results) is mapped back to one
 * result per event, partial failures included.
 */
import { REASONS } from '../errors.js';
import { evaluateMapping, MappingError } from '../compile/mapping.js';
import type { CompiledExpr } from '../compile/expression.js';
import type { CompiledBatch } from '../compile/spec.js';
import { sendWithAuth } from './auth-chain.js';
import { Batcher, type Pending } from './batcher.js';
import type { AuthResults, IntegrationContext, Result } from './context.js';
import type { SignalEvent } from './event.js';
import type { ExchangeOptions } from './http.js';
import type { OutcomeDetail } from './outcome.js';
import { renderRequest, value } from './requests.js';
import { currentSpan, endBatchSpan, inSpan, startBatchSpan } from './otel.js';
import type { Span } from '@opentelemetry/api';

/** `span`: the event's delivery span, when one records (the batch's span links to it). */
type BatchEntry = { event: SignalEvent; item: unknown; detail: OutcomeDetail; span: Span | undefined };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The vendor answered, but its answer does not fit the spec's `results` / `poll` expressions. */
class ResultsInvalid extends Error {}

const RESULTS_HINT =
  'The vendor accepted this batch (it may hold some or all of its items), but its answer does not fit the spec, so ' +
  'which items it rejected is unknown. Fix the expression named in the message (a JSONata path that matches one ' +
  'element yields that element, not a one-element array: append [] to keep an array) before sending these events again.';

function kindOf(v: unknown): string {
  return v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

function shown(v: unknown): string {
  const text = JSON.stringify(v) ?? '';
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

/** An expression over the vendor's answer whose failure to evaluate makes the answer unreadable. */
async function evaluated(key: string, expr: Parameters<typeof value>[0], input: unknown, bindings: Parameters<typeof value>[2]): Promise<unknown> {
  try {
    return await value(expr, input, bindings);
  } catch (e) {
    throw new ResultsInvalid(`${key} could not be evaluated: ${e instanceof Error ? e.message : String(e)}`);
  }
}

export class BatchSender {
  private readonly ctx: IntegrationContext;
  private readonly batch: CompiledBatch;
  /** One batcher per `group_by` value ('' when the spec does not group). */
  private readonly batchers = new Map<string, Batcher<BatchEntry, Result>>();
  private readonly envelopes = new Map<string, Promise<number>>();
  /** With group_by, `max_in_flight` holds across all groups: slots shared by every group's batcher. */
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];

  constructor(ctx: IntegrationContext, batch: CompiledBatch) {
    this.ctx = ctx;
    this.batch = batch;
  }

  /** Events waiting in batches not yet sent. */
  get pending(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.pending;
    return n;
  }

  /** Send whatever is still held, and wait for it. */
  async flush(): Promise<void> {
    await Promise.all([...this.batchers.values()].map((b) => b.flush()));
  }

  /** Queue one event's item; resolves with its result once its batch is done. */
  async enqueue(event: SignalEvent, body: unknown, fields: unknown, detail: OutcomeDetail, parked: (() => void) | undefined): Promise<Result> {
    const batch = this.batch;
    const config = this.ctx.config;
    const item = batch.item ? await evaluateMapping(batch.item, body, { config, event, fields }) : body;
    let group: string | number | boolean | undefined;
    if (batch.groupBy) {
      const g = await value(batch.groupBy, event, { config, event, fields });
      if (typeof g !== 'string' && typeof g !== 'number' && typeof g !== 'boolean') {
        throw new MappingError(`send.batch.group_by must yield a string, number or boolean for every event, got ${kindOf(g)}`, 'send.batch.group_by');
      }
      group = g;
    }
    const key = group === undefined ? '' : JSON.stringify(group);
    const bytes = Buffer.byteLength(JSON.stringify(item));
    // The envelope (the body with no items) depends on the config and the group only: measured once each.
    let envelopeP = this.envelopes.get(key);
    if (!envelopeP) {
      envelopeP = Promise.resolve(evaluateMapping(batch.body, undefined, { config, items: [], ...(group !== undefined ? { group } : {}) })).then((b) => Buffer.byteLength(JSON.stringify(b)));
      this.envelopes.set(key, envelopeP);
    }
    const envelope = await envelopeP;
    if (envelope + bytes > batch.max_bytes) {
      return { status: 'failed', reason: REASONS.itemTooLarge, message: `the event's item is ${bytes} bytes; a batch request may carry at most ${batch.max_bytes}`, retryable: false, attempts: 0 };
    }
    let batcher = this.batchers.get(key);
    if (!batcher) {
      const grouped = batch.groupBy !== undefined;
      const b: Batcher<BatchEntry, Result> = new Batcher<BatchEntry, Result>(
        { max_items: batch.max_items, max_bytes: batch.max_bytes, max_wait_ms: batch.max_wait_ms, envelope_bytes: envelope, max_in_flight: batch.max_in_flight },
        grouped ? (entries) => this.sendGrouped(key, b, entries, group) : (entries) => this.sendBatch(entries, group),
      );
      batcher = b;
      this.batchers.set(key, batcher);
    }
    const done = batcher.add({ event, item, detail, span: currentSpan() }, bytes);
    detail.queued = true;
    parked?.();
    // The engine is stopping: nothing else will join this batch, so do not wait for its timer.
    if (!this.ctx.lifecycle.accepting) void batcher.flush();
    return done;
  }

  /**
   * A group's batch: waits for one of the slots all groups share, and once its group has nothing left
   * the group's batcher is dropped, so a key seen once (a user id) holds no memory afterwards.
   */
  private async sendGrouped(key: string, batcher: Batcher<BatchEntry, Result>, entries: Pending<BatchEntry, Result>[], group: unknown): Promise<void> {
    while (this.inFlight >= this.batch.max_in_flight) await new Promise<void>((r) => this.slotWaiters.push(r));
    this.inFlight++;
    try {
      await this.sendBatch(entries, group);
    } finally {
      this.inFlight--;
      this.slotWaiters.shift()?.();
      // After the batcher has counted this batch done (its own bookkeeping runs when this promise settles).
      setImmediate(() => {
        if (batcher.idle && this.batchers.get(key) === batcher) {
          this.batchers.delete(key);
          this.envelopes.delete(key);
        }
      });
    }
  }

  /**
   * The batch's requests run under a span of their own, linked to every event's delivery span, or under
   * none: never under the span of whichever event happened to fill the batch or start its timer.
   */
  private sendBatch(entries: Pending<BatchEntry, Result>[], group: unknown): Promise<void> {
    let span: Span | undefined;
    if (currentSpan() || entries.some((e) => e.item.span)) span = startBatchSpan(entries.map((e) => e.item.span), entries.length);
    const sent = inSpan(span, () => this.sendBatchNow(entries, group));
    if (!span) return sent;
    const s = span;
    return sent.then(() => endBatchSpan(s, undefined), (e: unknown) => (endBatchSpan(s, 'thrown'), Promise.reject(e)));
  }

  private async sendBatchNow(entries: Pending<BatchEntry, Result>[], group: unknown): Promise<void> {
    const settle = (i: number, r: Result) => entries[i]!.resolve(r);
    // The auth requests this batch needed (stage `auth`): every event of the batch waited for them.
    const auth: OutcomeDetail['attempts'] = [];
    try {
      const results = await this.runBatch(entries.map((e) => e.item.item), group, auth);
      entries.forEach((e, i) => {
        e.item.detail.attempts.push(...auth, ...results.attempts);
        settle(i, results.items[i]!);
      });
    } catch (e) {
      const failed = this.ctx.failedFrom(e);
      entries.forEach((en, i) => {
        en.item.detail.attempts.push(...auth);
        settle(i, failed);
      });
    }
  }

  /** Send one batch and map the answer back to one result per item, in order. */
  private async runBatch(items: unknown[], group: unknown, authAttempts: OutcomeDetail['attempts']): Promise<{ items: Result[]; attempts: OutcomeDetail['attempts'] }> {
    const { ctx, batch } = this;
    const config = ctx.config;
    const send = ctx.spec.send;
    const body = await evaluateMapping(batch.body, undefined, { config, items, ...(group !== undefined ? { group } : {}) });
    const link = ctx.lifecycle.signal();
    let sent;
    try {
      sent = await sendWithAuth(
        ctx,
        (a) => renderRequest('send', send.request, undefined, { config, auth: a }, body),
        ctx.exchangeOptions(send.rules, send.vendorError, send.success, { config }, link.signal),
        authAttempts,
      );
    } finally {
      link.release();
    }
    const { res, auth } = sent;
    const attempts = res.attempts.map((a) => ({ ...a, stage: 'send' }));
    const common = { attempts: res.attempts.length, batch_size: items.length, ...(res.possibly_duplicated ? { possibly_duplicated: true } : {}) };
    if (res.aborted) {
      const failed: Result = { ...common, status: 'failed', reason: REASONS.interrupted, message: 'delivery was interrupted', retryable: true };
      return { items: items.map(() => failed), attempts };
    }
    if (res.error !== undefined) {
      const failed = { ...ctx.failedFrom(res.error), ...common };
      return { items: items.map(() => failed), attempts };
    }
    // Some vendors answer a partly rejected batch with an error status and the list of rejected items:
    // the others were accepted. Without such a list the status means what the error rules say.
    let partialList: unknown;
    const ie = batch.itemErrors;
    if (res.status !== undefined && !send.success(res.status) && ie?.status?.(res.status)) {
      partialList = await value(ie.list, res.json, { config }).catch(() => undefined);
      if (Array.isArray(partialList) && partialList.length === 0) partialList = undefined;
    }
    if (res.status === undefined || (!send.success(res.status) && partialList === undefined)) {
      const failed = { ...ctx.failedFrom(ctx.failure(REASONS.http, 'the vendor did not accept the batch', res)), ...common };
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

    try {
      // Per-item results in the immediate answer, aligned with the items sent.
      if (batch.results?.items) await this.readResults(batch.results, res.json, out, common, res.status);
      // Only the rejected items, each naming its item by index.
      if (ie) {
        const list = partialList ?? (await evaluated('send.batch.item_errors.list', ie.list, res.json, rb));
        await this.readItemErrors(ie, list, out, common, res.status);
      }
      // Vendors that work asynchronously: wait for processing, then read which items were rejected.
      if (batch.poll && (!batch.poll.when || (await value(batch.poll.when, undefined, rb)) === true)) {
        try {
          await this.poll(batch.poll, res.json, auth, out, common);
        } catch (e) {
          if (e instanceof ResultsInvalid) throw e;
          // No answer to read: the vendor accepted the batch, and failing its events now would invite a
          // retry that writes them twice.
          const why = e instanceof Error ? ctx.redact(e.message) : 'unknown error';
          for (const o of out) if (o.status === 'delivered') o.message = `accepted, but its processing results could not be read: ${why}`;
        }
      }
    } catch (e) {
      if (!(e instanceof ResultsInvalid)) {
        // Anything else failing once the vendor accepted the batch (e.g. poll.when): it holds the items.
        const failed: Result = { ...ctx.failedFrom(e), ...common, http_status: res.status, possibly_duplicated: true };
        return { items: items.map(() => ({ ...failed })), attempts };
      }
      // An answer that does not fit the spec says nothing reliable about any item (a shifted index
      // blames the wrong rows), so no item of the batch may read as delivered.
      const failed: Result = {
        ...common,
        status: 'failed',
        reason: REASONS.batchResults,
        message: ctx.redact(e.message),
        retryable: false,
        http_status: res.status,
        hint: RESULTS_HINT,
        possibly_duplicated: true,
      };
      return { items: items.map(() => ({ ...failed })), attempts };
    }
    return { items: out, attempts };
  }

  /** `results`: one entry per item sent, in order; anything else is an answer the spec cannot read. */
  private async readResults(r: NonNullable<CompiledBatch['results']>, body: unknown, out: Result[], common: Partial<Result>, status: number): Promise<void> {
    const rb = { config: this.ctx.config };
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
        out[i] = await this.itemFailure(entry, r, common, status);
      }
    }
  }

  /**
   * Entries that each name a rejected item by its 0-based index (`poll.errors`, `item_errors.list`): every
   * index must be an integer in range and name an item once, or the answer cannot be trusted at all.
   */
  private async rejectByIndex(
    key: string,
    entries: unknown[],
    r: { index: CompiledExpr; message?: CompiledExpr; code?: CompiledExpr; hint?: string },
    rejected: Set<number>,
    out: Result[],
    common: Partial<Result>,
    status: number,
  ): Promise<void> {
    const config = this.ctx.config;
    for (const entry of entries) {
      const index = await evaluated(key, r.index, entry, { config });
      if (typeof index !== 'number' || !Number.isInteger(index)) {
        throw new ResultsInvalid(`${key} must evaluate to an integer, got ${kindOf(index)} ${shown(index)}`);
      }
      if (index < 0 || index >= out.length) throw new ResultsInvalid(`${key} ${index} is out of range for a batch of ${out.length} item(s) (0 to ${out.length - 1})`);
      if (rejected.has(index)) throw new ResultsInvalid(`${key} ${index} names the same item twice`);
      rejected.add(index);
      out[index] = await this.itemFailure(entry, r, common, status);
    }
  }

  /** `item_errors`: the answer lists only the rejected items, by index (absent or null: none rejected). */
  private async readItemErrors(e: NonNullable<CompiledBatch['itemErrors']>, list: unknown, out: Result[], common: Partial<Result>, status: number): Promise<void> {
    if (list !== undefined && list !== null && !Array.isArray(list)) throw new ResultsInvalid(`send.batch.item_errors.list must evaluate to an array, got ${kindOf(list)}`);
    await this.rejectByIndex('send.batch.item_errors.index', (list ?? []) as unknown[], e, new Set(), out, common, status);
  }

  private async itemFailure(entry: unknown, r: { message?: CompiledExpr; code?: CompiledExpr; hint?: string }, common: Partial<Result>, status: number): Promise<Result> {
    const config = this.ctx.config;
    const message = r.message ? await value(r.message, entry, { config }).catch(() => undefined) : undefined;
    const code = r.code ? await value(r.code, entry, { config }).catch(() => undefined) : undefined;
    return {
      ...common,
      status: 'failed',
      reason: REASONS.itemRejected,
      message: this.ctx.redact(typeof message === 'string' ? message : 'the vendor rejected this item of the batch'),
      retryable: false,
      http_status: status,
      ...(typeof code === 'string' || typeof code === 'number' ? { vendor_code: code } : {}),
      ...(r.hint ? { hint: r.hint } : {}),
      attempts: common.attempts ?? 1,
    };
  }

  private async poll(poll: NonNullable<CompiledBatch['poll']>, response: unknown, auth: AuthResults, out: Result[], common: Partial<Result>): Promise<void> {
    const ctx = this.ctx;
    const config = ctx.config;
    const send = ctx.spec.send;
    const link = ctx.lifecycle.signal();
    try {
      await this.pollWith(poll, response, auth, out, common, ctx.exchangeOptions(send.rules, send.vendorError, (s) => s >= 200 && s < 300, { config }, link.signal));
    } finally {
      link.release();
    }
  }

  private async pollWith(
    poll: NonNullable<CompiledBatch['poll']>,
    response: unknown,
    auth: AuthResults,
    out: Result[],
    common: Partial<Result>,
    opts: ExchangeOptions,
  ): Promise<void> {
    const ctx = this.ctx;
    const config = ctx.config;
    const deadline = Date.now() + poll.max_wait_ms;
    let status: unknown;
    for (;;) {
      const { res } = await sendWithAuth(ctx, (a) => renderRequest('poll.status', poll.status, undefined, { config, auth: a, response }, undefined), opts);
      if (res.error !== undefined) throw res.error;
      if (res.status === undefined || res.status >= 300) throw ctx.failure(REASONS.http, 'the batch was accepted but its status could not be read', res);
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
    const rejected = new Set<number>();
    for (let page = 1; page <= out.length; page++) {
      const { res } = await sendWithAuth(ctx, (a) => renderRequest('poll.results', poll.results, undefined, { config, auth: a, response, status, page }, undefined), opts);
      if (res.error !== undefined) throw res.error;
      if (res.status === undefined || res.status >= 300) throw ctx.failure(REASONS.http, 'the batch was processed but its results could not be read', res);
      // Absent (or null) means no rejected entries on this page; anything else must be a list.
      const errors = await evaluated('send.batch.poll.errors', poll.errors, res.json, { config });
      if (errors !== undefined && errors !== null && !Array.isArray(errors)) {
        throw new ResultsInvalid(`send.batch.poll.errors must evaluate to an array, got ${kindOf(errors)}`);
      }
      await this.rejectByIndex('send.batch.poll.index', (errors ?? []) as unknown[], poll, rejected, out, common, res.status);
      if (!poll.more || (await value(poll.more, res.json, { config, page })) !== true) break;
    }
  }
}
