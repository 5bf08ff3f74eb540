/**
 * The batch send: events are queued into batches, each batch goes out in one request, and the answer
 * (and, for vendors that work asynchronously, the polled processing results) is mapped back to one
 * result per event, partial failures included.
 */
import { REASONS } from '../errors.js';
import { evaluateMapping, MappingError } from '../compile/mapping.js';
import type { Bindings, CompiledExpr } from '../compile/expression.js';
import type { CompiledBatch } from '../compile/spec.js';
import { MAX_SPLIT_DEPTH } from '../compile/batch.js';
import { evaluated, kindOf, readItemErrors, readResults, rejectByIndex, ResultsInvalid, RESULTS_HINT } from './batch-results.js';
import { sendWithAuth } from './auth-chain.js';
import { Batcher, type Pending } from './batcher.js';
import type { AuthResults, IntegrationContext, Result } from './context.js';
import type { SignalEvent } from './event.js';
import type { ExchangeOptions, ExchangeResult } from './http.js';
import type { OutcomeDetail } from './outcome.js';
import { renderRequest, value } from './requests.js';
import { currentSpan, endBatchSpan, inSpan, startBatchSpan } from './otel.js';
import type { Span } from '@opentelemetry/api';

/** `span`: the event's delivery span, when one records (the batch's span links to it). */
type BatchEntry = { event: SignalEvent; item: unknown; detail: OutcomeDetail; span: Span | undefined };
type Attempts = OutcomeDetail['attempts'];
/** One result per item, in order, and the attempts each item's requests made. */
type Sent = { items: Result[]; attempts: Attempts[] };
/** Where a batch's chain of requests stands: whether a resend is still allowed, and how often it was halved. */
type Round = { resend: boolean; depth: number };
type GroupValue = string | number | boolean;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `group_by`'s value for one event: a scalar, or with a list of keys the list of their values. */
export async function groupOf(groupBy: CompiledBatch['groupBy'], event: SignalEvent, bindings: Bindings): Promise<GroupValue | GroupValue[] | undefined> {
  if (!groupBy) return undefined;
  const one = async (expr: CompiledExpr, key: string): Promise<GroupValue> => {
    const g = await value(expr, event, bindings);
    if (typeof g !== 'string' && typeof g !== 'number' && typeof g !== 'boolean') {
      throw new MappingError(`${key} must yield a string, number or boolean for every event, got ${kindOf(g)}`, key);
    }
    return g;
  };
  if (!Array.isArray(groupBy)) return one(groupBy, 'send.batch.group_by');
  const out: GroupValue[] = [];
  for (const [i, g] of groupBy.entries()) out.push(await one(g, `send.batch.group_by[${i}]`));
  return out;
}

/**
 * Results of a follow-up request (a resend, a half) after `before`: its items carry those attempts too, and
 * `possibly_duplicated` when an attempt of the earlier exchange broke after it went out.
 */
function after(before: Attempts, sub: Sent, duplicated: boolean | undefined): Sent {
  return {
    items: sub.items.map((r) => ({ ...r, attempts: (r.attempts ?? 0) + before.length, ...(duplicated ? { possibly_duplicated: true } : {}) })),
    attempts: sub.attempts.map((a) => [...before, ...a]),
  };
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

  /** The record's own limits where the spec reads them from its config (checked numbers: validate/record.ts). */
  readonly maxItems: number;
  private readonly maxBytes: number;

  constructor(ctx: IntegrationContext, batch: CompiledBatch) {
    this.ctx = ctx;
    this.batch = batch;
    const lf = batch.limitFields;
    this.maxItems = lf?.max_items ? Number(ctx.config[lf.max_items]) : batch.max_items;
    this.maxBytes = lf?.max_bytes ? Number(ctx.config[lf.max_bytes]) : batch.max_bytes;
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
    const group = await groupOf(batch.groupBy, event, { config, event, fields });
    const key = group === undefined ? '' : JSON.stringify(group);
    const bytes = Buffer.byteLength(JSON.stringify(item));
    // The envelope (the body with no items) depends on the config and the group only: measured once each.
    let envelopeP = this.envelopes.get(key);
    if (!envelopeP) {
      envelopeP = Promise.resolve(evaluateMapping(batch.body, undefined, { config, items: [], ...(group !== undefined ? { group } : {}) })).then((b) => Buffer.byteLength(JSON.stringify(b)));
      this.envelopes.set(key, envelopeP);
    }
    const envelope = await envelopeP;
    if (envelope + bytes > this.maxBytes) {
      return {
        status: 'failed',
        reason: REASONS.itemTooLarge,
        message: `the event's item is ${bytes} bytes; a batch request may carry at most ${this.maxBytes}`,
        retryable: false,
        attempts: 0,
        hint: 'Shorten what the spec maps into one item (or leave out its largest fields), or raise send.batch.max_bytes if the vendor allows more.',
      };
    }
    let batcher = this.batchers.get(key);
    if (!batcher) {
      const grouped = batch.groupBy !== undefined;
      const b: Batcher<BatchEntry, Result> = new Batcher<BatchEntry, Result>(
        { max_items: this.maxItems, max_bytes: this.maxBytes, max_wait_ms: batch.max_wait_ms, envelope_bytes: envelope, max_in_flight: batch.max_in_flight },
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
      const results = await this.runBatch(entries.map((e) => e.item.item), group, auth, { resend: true, depth: 0 });
      entries.forEach((e, i) => {
        e.item.detail.attempts.push(...auth, ...results.attempts[i]!);
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

  /**
   * Send one batch and map the answer back to one result per item, in order. A refusal that lists its bad
   * items may send the others once more (`item_errors.others: resend`), and a batch too large for the
   * vendor goes again in halves (`split`): each item still ends with exactly one result.
   */
  private async runBatch(items: unknown[], group: unknown, authAttempts: Attempts, round: Round): Promise<Sent> {
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
    const all = (r: Result): Sent => ({ items: items.map(() => r), attempts: items.map(() => attempts) });
    if (res.aborted) return all({ ...common, status: 'failed', reason: REASONS.interrupted, message: 'delivery was interrupted', retryable: true });
    if (res.error !== undefined) return all({ ...ctx.failedFrom(res.error), ...common });
    if (res.status !== undefined && !send.success(res.status) && res.rule?.action === 'split') return this.split(items, group, authAttempts, round, attempts, res);
    // Some vendors answer a partly rejected batch with an error status and the list of rejected items:
    // the others were accepted (or, with `others`, refused too). Without such a list the status means what the error rules say.
    let partialList: unknown;
    const ie = batch.itemErrors;
    if (res.status !== undefined && !send.success(res.status) && ie?.status?.(res.status)) {
      partialList = await value(ie.list, res.json, { config }).catch(() => undefined);
      if (Array.isArray(partialList) && partialList.length === 0) partialList = undefined;
    }
    if (res.status === undefined || (!send.success(res.status) && partialList === undefined)) {
      return all({ ...ctx.failedFrom(ctx.failure(REASONS.http, 'the vendor did not accept the batch', res)), ...common });
    }
    const rb = { config };
    const batchId = send.responseId ? await value(send.responseId, res.json, rb).catch(() => undefined) : undefined;
    const out: Result[] = items.map(() => ({
      status: 'delivered',
      http_status: res.status!,
      ...common,
      ...(batchId !== undefined && batchId !== null ? { response_id: String(batchId) } : {}),
    }));
    // A refusal that took nothing (`others: resend | failed`): the items it does not list were not ingested.
    const refused = partialList !== undefined && ie!.others !== 'delivered';

    try {
      // Per-item results in the immediate answer, aligned with the items sent.
      if (batch.results?.items) await readResults(ctx, batch.results, res.json, out, common, res.status);
      // Only the rejected items, each naming its item by index.
      if (ie) {
        const list = partialList ?? (await evaluated('send.batch.item_errors.list', ie.list, res.json, rb));
        await readItemErrors(ctx, ie, list, out, common, res.status);
      }
      // Vendors that work asynchronously: wait for processing, then read which items were rejected.
      if (!refused && batch.poll && (!batch.poll.when || (await value(batch.poll.when, undefined, rb)) === true)) {
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
        return { items: items.map(() => ({ ...failed })), attempts: items.map(() => attempts) };
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
      return { items: items.map(() => ({ ...failed })), attempts: items.map(() => attempts) };
    }
    const result: Sent = { items: out, attempts: items.map(() => attempts) };
    if (refused) await this.others(items, group, authAttempts, round, result, res.status);
    return result;
  }

  /**
   * The items a refusal did not list (still `delivered` in `result`): sent once more without the listed
   * ones, whose own answer decides them (`resend`), or failed as not sent (`failed`, or a resend refused again).
   */
  private async others(items: unknown[], group: unknown, authAttempts: Attempts, round: Round, result: Sent, status: number): Promise<void> {
    const rest = result.items.flatMap((r, i) => (r.status === 'delivered' ? [i] : []));
    if (!rest.length) return;
    if (this.batch.itemErrors!.others === 'resend' && round.resend) {
      const first = result.items[rest[0]!]!;
      const again = after(result.attempts[rest[0]!]!, await this.runBatch(rest.map((i) => items[i]), group, authAttempts, { ...round, resend: false }), first.possibly_duplicated);
      rest.forEach((i, k) => {
        result.items[i] = again.items[k]!;
        result.attempts[i] = again.attempts[k]!;
      });
      return;
    }
    for (const i of rest) {
      const { response_id: _id, ...r } = result.items[i]!;
      result.items[i] = {
        ...r,
        status: 'failed',
        reason: REASONS.http,
        message: round.resend ? 'the vendor refused the batch for other items of it and took none of it' : 'the vendor refused the batch again (for other items) after the listed items were left out',
        retryable: true,
        http_status: status,
      };
    }
  }

  /**
   * A batch the vendor found too large (413, or a rule with action `split`): sent again in halves, each
   * half on its own, down to single items; an item refused alone fails with `item_too_large`. At most
   * MAX_SPLIT_DEPTH halvings, so at most 2n-1 requests for n items.
   */
  private async split(items: unknown[], group: unknown, authAttempts: Attempts, round: Round, attempts: Attempts, res: ExchangeResult): Promise<Sent> {
    const ctx = this.ctx;
    const common = { attempts: res.attempts.length, batch_size: items.length };
    if (items.length === 1 || round.depth >= MAX_SPLIT_DEPTH) {
      const base = ctx.failedFrom(ctx.failure(REASONS.http, items.length === 1 ? 'the vendor refused this event alone as too large' : `the vendor still refused the batch as too large after ${MAX_SPLIT_DEPTH} halvings`, res));
      const r: Result = items.length === 1 ? { ...base, ...common, status: 'failed', reason: REASONS.itemTooLarge, retryable: false } : { ...base, ...common };
      return { items: items.map(() => ({ ...r })), attempts: items.map(() => attempts) };
    }
    const mid = Math.ceil(items.length / 2);
    const next = { ...round, depth: round.depth + 1 };
    const first = after(attempts, await this.runBatch(items.slice(0, mid), group, authAttempts, next), res.possibly_duplicated);
    const second = after(attempts, await this.runBatch(items.slice(mid), group, authAttempts, next), res.possibly_duplicated);
    return { items: [...first.items, ...second.items], attempts: [...first.attempts, ...second.attempts] };
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
      await rejectByIndex(ctx, 'send.batch.poll.index', (errors ?? []) as unknown[], poll, rejected, out, common, res.status);
      if (!poll.more || (await value(poll.more, res.json, { config, page })) !== true) break;
    }
  }
}
