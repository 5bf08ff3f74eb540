/**
 * What one queue attempt is made of, apart from running it: which record an integration is known by in the
 * fleet (its id), whether a queued message may be sent with a record (id and credential scope), the record's
 * queue retry policy, and what an attempt leaves behind — its summary in the history, and the dead-letter line.
 * Pure functions, tested through the worker.
 */
import { DEFAULT_QUEUE_RETRY_POLICY, type QueueRetryPolicy } from '../policy/queue-retry.js';
import type { Integration } from '../run/integration.js';
import type { Outcome } from '../run/outcome.js';
import { eventIdOf } from '../run/event.js';
import type { AttemptSummary, QueuedEvent } from './queue.js';

export type Disposition = 'delivered' | 'skipped' | 'retry_scheduled' | 'dead_lettered';

/** An outcome of one queue attempt: the engine's outcome plus where the event went next. */
/** What the fleet adds to an outcome: the queue attempt and where the event went next. */
export interface FleetAttemptInfo {
  job_id: string;
  /** This queue attempt (1-based) and how many the record allows. */
  attempt: number;
  max_attempts: number;
  disposition: Disposition;
  /** For `retry_scheduled`: the wait before the next attempt. */
  next_attempt_in_ms?: number;
}

/** An outcome of one queue attempt (still discriminated on `status`). */
export type FleetOutcome = Outcome & FleetAttemptInfo;

/**
 * The id a fleet keys an integration by: the record's `id`. A record without one is refused, since a name
 * is only a label (two tenants may share one, a rename would orphan the queue).
 */
export function fleetIdOf(integration: Integration): string {
  if (integration.id === undefined) {
    throw new TypeError(`integration record '${integration.name}' has no id: a fleet keys queues, dead letters and counts by the record's stable id — add "id": "<the id the Management API assigned>" to the record`);
  }
  return integration.id;
}

/**
 * Why a queued message must not be sent with this record, or undefined when it may: it was enqueued for
 * another record id, or for a record reaching another account (credential scope), or by something that
 * did not say which record it is for.
 */
export function recordMismatch(m: QueuedEvent, id: string, scope: string): string | undefined {
  if (typeof m.integration !== 'string' || typeof m.scope !== 'string' || !m.integration || !m.scope) return 'the queued event does not say which integration record it was enqueued for (written by something other than enqueue)';
  if (m.integration !== id) return `the queued event was enqueued for integration '${m.integration}', not '${id}'`;
  if (m.scope !== scope) return `the queued event was enqueued for a record of '${id}' that reaches another account (source_id or credential scope changed since); it is not sent with this record's credentials`;
  return undefined;
}

/** An error as one short line for an outcome (never a stack). */
export function errorText(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.replace(/\s+/g, ' ').slice(0, 300);
}

/** The event's id, or null when even reading it fails. */
export function safeEventId(event: unknown): string | null {
  try {
    return eventIdOf(event);
  } catch {
    return null;
  }
}

/** The record's queue retry policy (`retry.queue`), defaults filled. */
export function queuePolicyOf(record: unknown, backoffOverride?: number): QueueRetryPolicy {
  const q = ((record as { retry?: { queue?: Partial<QueueRetryPolicy> } })?.retry?.queue ?? {}) as Partial<QueueRetryPolicy>;
  return { ...DEFAULT_QUEUE_RETRY_POLICY, ...q, ...(backoffOverride !== undefined ? { backoff_ms: backoffOverride } : {}) };
}

/**
 * A failed attempt whose request may have reached the vendor: no HTTP answer (connection broken, timed
 * out) after at least one request went out. A later attempt of the same event may duplicate it there.
 */
export function mayHaveReachedVendor(o: Outcome): boolean {
  return o.status === 'failed' && o.http_status === undefined && o.attempts > 0;
}

/** This queue attempt's number (1-based): counted from the last replay, whose history stays in front. */
export function attemptNumber(m: QueuedEvent): number {
  const before = typeof m.replayed_after === 'number' && m.replayed_after >= 0 ? Math.min(m.replayed_after, m.history.length) : 0;
  return m.history.length - before + 1;
}

/** An attempt's line in the history; `replay` says after which replay it was made (none: before any). */
export function summarize(o: Outcome, attempt: number, possiblyDuplicated: boolean, replay?: number): AttemptSummary {
  return {
    attempt,
    ...(replay ? { replay } : {}),
    at: new Date().toISOString(),
    status: o.status,
    ...(o.reason !== undefined ? { reason: o.reason } : {}),
    ...(o.message !== undefined ? { message: o.message } : {}),
    ...(o.hint !== undefined ? { hint: o.hint } : {}),
    ...(o.http_status !== undefined ? { http_status: o.http_status } : {}),
    ...(o.retryable !== undefined ? { retryable: o.retryable } : {}),
    http_attempts: o.attempts,
    ...(possiblyDuplicated ? { possibly_duplicated: true } : {}),
    duration_ms: o.duration_ms,
  };
}

/**
 * The dead-letter line: `deliver --dead-letter`'s shape (`dead_letter` with reason, message, hint,
 * attempts, http_status, integration, failed_at, event_id, retryable, then `event`), where `attempts`
 * counts queue attempts (all of them, before and after replays), plus the job id, the duplicate flag and every attempt's summary in `history`.
 */
export function deadLetterLine(o: FleetOutcome, m: QueuedEvent, history: AttemptSummary[], possiblyDuplicated: boolean, raw?: string): string {
  const dead_letter = {
    reason: o.reason ?? null,
    message: o.message ?? null,
    hint: o.hint ?? null,
    attempts: history.length,
    http_status: o.http_status ?? null,
    integration: o.integration,
    integration_id: o.integration_id ?? null,
    failed_at: new Date().toISOString(),
    event_id: o.event_id,
    retryable: o.retryable ?? null,
    job_id: m.job_id,
    possibly_duplicated: possiblyDuplicated,
    ...(m.replays ? { replays: m.replays } : {}),
    history,
  };
  if (raw !== undefined) return JSON.stringify({ dead_letter, raw_line: raw });
  return JSON.stringify({ dead_letter, event: m.event });
}
