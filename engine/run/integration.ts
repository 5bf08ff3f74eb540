/**
 * Stage 4 of 4: run a compiled spec for one integration record. `deliver` turns any event into exactly
 * one outcome and never throws for a per-event problem; `preview` builds the very same requests with
 * secrets and tokens redacted and sends nothing. Specs that declare a batch send many events per
 * request; each event still gets its own outcome, partial failures included.
 *
 * This class is the façade: it gates each event (enabled, forwarded, consent: gate.ts, shared with preview)
 * and hands it to the stage modules — auth-chain.ts, send.ts, batch-send.ts, preview.ts — which share one IntegrationContext.
 */
import { REASONS } from '../errors.js';
import type { CompiledSpec } from '../compile/spec.js';
import type { CheckedRecord } from '../validate/record.js';
import { concealWhenPrinted } from '../policy/redact.js';
import { BatchSender } from './batch-send.js';
import { IntegrationContext, type Config, type IntegrationDeps, type Result } from './context.js';
import type { BuiltBody } from './body.js';
import { eventIdOf, eventNameOf, eventProblems, type SignalEvent } from './event.js';
import type { Outcome, OutcomeDetail } from './outcome.js';
import { skipOf } from './gate.js';
import { previewEvent, type Preview, type PreviewRequest } from './preview.js';
import { sendOne } from './send.js';
import { credentialScopeFingerprint } from '../policy/credential-scope.js';
import { TraceRecorder, traced, type TraceSink } from './trace.js';
import { endDeliverySpan, endDeliverySpanThrown, inSpan, startDeliverySpan, type DeliverySpanOptions } from './otel.js';

export { applyEndpoint } from './requests.js';
export type { Preview, PreviewRequest } from './preview.js';
export type { IntegrationDeps } from './context.js';

export interface DeliverOptions {
  /** Abort an in-flight delivery (shutdown): it ends as failed, reason `interrupted`, and is not retried. */
  signal?: AbortSignal;
  /** Record this delivery's trace (run/trace.ts) and hand it here, redacted, once the outcome is final. Off when absent. */
  trace?: TraceSink;
  /**
   * Where this delivery's OpenTelemetry span (run/otel.ts) continues from: the context carried on the queued
   * event, and the queue attempt. Spans exist only when the runtime registered an OpenTelemetry SDK.
   */
  otel?: DeliverySpanOptions;
}

/** Upper bound on events held in flight by one caller loop (batches of 32,000 rows need a lot). */
const MAX_IN_FLIGHT_EVENTS = 50_000;

export class Integration {
  /** The record's stable id (Management API), when it has one: the fleet keys everything by it. */
  readonly id: string | undefined;
  /** Display label only; two records may share a name. */
  readonly name: string;
  readonly vendor: string;
  readonly spec: CompiledSpec;
  private readonly ctx: IntegrationContext;
  private readonly batch: BatchSender | undefined;

  constructor(checked: CheckedRecord, deps: IntegrationDeps) {
    this.ctx = new IntegrationContext(checked, deps);
    this.spec = checked.spec;
    this.id = checked.record.id;
    this.name = checked.record.name;
    this.vendor = checked.spec.vendor;
    this.batch = checked.spec.send.batch ? new BatchSender(this.ctx, checked.spec.send.batch) : undefined;
  }

  /** Which vendor account this record's events reach (see policy/credential-scope.ts); queued events carry it. */
  get credentialScope(): string {
    return (this.scope ??= credentialScopeFingerprint(this.vendor, this.ctx.checked.record, this.spec.auth.flatMap((s) => s.cacheKey)));
  }
  private scope: string | undefined;

  /** Events per request when the spec batches (this record's own limit when read from its config), else 1. */
  get batchSize(): number {
    return this.batch?.maxItems ?? 1;
  }

  /**
   * How many events to keep in flight for `concurrency` parallel requests: a batching integration needs
   * a batch's worth per request or its batches stay small; capped so memory stays bounded.
   */
  inFlightWindow(concurrency: number): number {
    const c = Math.max(1, concurrency);
    return Math.max(c, Math.min(c * this.batchSize, MAX_IN_FLIGHT_EVENTS));
  }

  /** Deliver one event: always resolves with exactly one outcome. In batch mode, when its batch is done. */
  deliver(event: SignalEvent, opts: DeliverOptions = {}): Promise<Outcome> {
    const span = startDeliverySpan(this, event, opts.otel);
    if (span) {
      return inSpan(span, () => (opts.trace ? this.deliverTraced(event, opts.signal, opts.trace) : this.run(event, undefined, opts.signal))).then(
        (o) => (endDeliverySpan(span, o), o),
        (e: unknown) => {
          endDeliverySpanThrown(span);
          throw e;
        },
      );
    }
    if (opts.trace) return this.deliverTraced(event, opts.signal, opts.trace);
    return this.run(event, undefined, opts.signal);
  }

  /** `run` inside a delivery span when one records (deliverAll's events). */
  private runSpanned(event: unknown, parked: () => void): Promise<Outcome> {
    const span = startDeliverySpan(this, event, undefined);
    if (!span) return this.run(event, parked);
    return inSpan(span, () => this.run(event, parked)).then(
      (o) => (endDeliverySpan(span, o), o),
      (e: unknown) => {
        endDeliverySpanThrown(span);
        throw e;
      },
    );
  }

  private deliverTraced(event: unknown, signal: AbortSignal | undefined, sink: TraceSink): Promise<Outcome> {
    const rec = new TraceRecorder(event);
    return traced(rec, () => this.run(event, undefined, signal)).then((outcome) => {
      sink(rec.finish(outcome, this.ctx.redact));
      return outcome;
    });
  }

  /**
   * `parked` is called once the event is queued in a batch or settled, whichever comes first. One promise
   * chain per event, no async frame: the event is counted in flight (so that a shutdown waits for it)
   * from here until its outcome is final.
   */
  private run(event: unknown, parked: (() => void) | undefined, signal?: AbortSignal): Promise<Outcome> {
    const started = Date.now();
    const detail: OutcomeDetail = { attempts: [] };
    const lifecycle = this.ctx.lifecycle;
    lifecycle.enter();
    let r: Result | Promise<Result>;
    if (!lifecycle.accepting) {
      r = { status: 'failed', reason: REASONS.interrupted, message: 'the engine is shutting down: the event was not sent', retryable: true, attempts: 0 };
    } else {
      try {
        r = this.deliverInner(event, detail, parked, signal);
      } catch (e) {
        r = this.failedResult(e, detail);
      }
    }
    if (!(r instanceof Promise)) {
      try {
        return Promise.resolve(this.finish(event, started, detail, parked, r));
      } catch (e) {
        return Promise.reject(e); // an onOutcome that throws: the caller's promise rejects, as it always did
      }
    }
    return r.then(
      (result) => this.finish(event, started, detail, parked, result),
      (e: unknown) => this.finish(event, started, detail, parked, undefined, e),
    );
  }

  private failedResult(e: unknown, detail: OutcomeDetail): Result {
    // `attempts` counts the send's HTTP attempts; the auth requests' are in the detail only.
    let attempts = 0;
    for (const a of detail.attempts) if (a.stage !== 'auth') attempts++;
    return { ...this.ctx.failedFrom(e), attempts };
  }

  /**
   * The event's one outcome (from its result, or from the error that ended it), reported to `onOutcome`;
   * whatever happens here, the event stops counting as in flight.
   */
  private finish(event: unknown, started: number, detail: OutcomeDetail, parked: (() => void) | undefined, done: Result | undefined, error?: unknown): Outcome {
    try {
      const result = done ?? this.failedResult(error, detail);
      if (!detail.queued) parked?.();
      // Built in place, in the same key order as before: no intermediate copies per event.
      const outcome = (this.id === undefined
        ? { event_id: eventIdOf(event), integration: this.name, vendor: this.vendor }
        : { event_id: eventIdOf(event), integration: this.name, integration_id: this.id, vendor: this.vendor }) as Outcome;
      const name = eventNameOf(event);
      if (name !== undefined) outcome.event = name;
      Object.assign(outcome, result);
      outcome.duration_ms = Date.now() - started;
      this.ctx.deps.onOutcome?.(outcome, detail);
      return outcome;
    } finally {
      this.ctx.lifecycle.leave();
    }
  }

  /** Synchronous for an event decided without a request; otherwise the send's own promise (no async layer of its own). */
  private deliverInner(raw: unknown, detail: OutcomeDetail, parked: (() => void) | undefined, signal: AbortSignal | undefined): Result | Promise<Result> {
    const problems = eventProblems(raw);
    if (problems.length) return { status: 'failed', reason: REASONS.invalidEvent, message: problems.join('; '), retryable: false, attempts: 0 };
    const event = raw as SignalEvent;
    const checked = this.ctx.checked;
    const skip = skipOf(checked, event);
    if (skip) return skip;

    const config = checked.record.config;
    const built = this.ctx.buildBody(event, config);
    if (built instanceof Promise) return built.then((b) => this.send(event, config, b, detail, parked, signal));
    return this.send(event, config, built, detail, parked, signal);
  }

  private send(event: SignalEvent, config: Config, built: BuiltBody, detail: OutcomeDetail, parked: (() => void) | undefined, signal: AbortSignal | undefined): Promise<Result> {
    if (this.batch) return this.batch.enqueue(event, built.body, built.fields, detail, parked);
    return sendOne(this.ctx, event, config, built.body, built.fields, detail, signal);
  }

  /** Events waiting in batches not yet sent (batching specs), for metrics and shutdown. */
  get pending(): number {
    return this.batch?.pending ?? 0;
  }

  /** Send whatever a batching integration still holds, and wait for it (end of input, shutdown). */
  async flush(): Promise<void> {
    await this.batch?.flush();
  }

  /**
   * The exact requests `deliver` would send for this event, secrets and tokens redacted; sends nothing.
   * An event `deliver` would skip (integration disabled, event not forwarded, consent missing) sends
   * nothing: `[]`; `previewEvent` says why.
   */
  async preview(raw: unknown): Promise<PreviewRequest[]> {
    const p = await previewEvent(this.ctx, raw);
    return p.status === 'skipped' ? [] : p.requests;
  }

  /**
   * What `deliver` would do with this event, decided by the same checks: `{status: 'skipped', reason,
   * message}` or `{status: 'would_send', requests}` (redacted). Throws a DeliveryError, as `preview` does,
   * for an event that would fail before anything is sent (invalid event, check failed, host refused).
   */
  previewEvent(raw: unknown): Promise<Preview> {
    return previewEvent(this.ctx, raw);
  }

  /** Deliver many events; outcomes come back in input order. A batching integration fills whole batches. */
  async deliverAll(events: readonly SignalEvent[], opts: { concurrency?: number } = {}): Promise<Outcome[]> {
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
        outcomes[i] = await this.runSpanned(events[i], onParked);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, events.length) }, worker));
    return outcomes;
  }
}

// console.log(integration) must not print the record's secrets or the tokens it holds.
concealWhenPrinted(Integration, (i) => ({ id: i.id, name: i.name, vendor: i.vendor }));
