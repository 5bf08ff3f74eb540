/**
 * The delivery queue as the fleet's worker sees it: one small interface, so a Kafka consumer (the
 * platform's `delivery-{integration_id}` topics) can take the place of the Redis Streams implementation
 * (redis-queue.ts) without touching the worker.
 *
 * Contract every implementation keeps:
 * - `take` hands out leases; a lease not settled, released or renewed within the visibility timeout is
 *   handed to another consumer (a worker killed with SIGKILL loses its leases, not its events);
 * - `settle` records the attempt's outcome and acknowledges the event in one atomic step, and only for
 *   the lease's current holder: an event ends exactly once even when two workers raced for it;
 * - retries are scheduled durably (they survive every worker), dead letters stay until replayed.
 */
import type { Outcome } from '../run/outcome.js';

/** One finished queue attempt, as the dead letter and the next attempt see it. */
export interface AttemptSummary {
  /** 1-based, counted afresh after each replay. */
  attempt: number;
  /** Made after this many replays (absent: before any). */
  replay?: number;
  /** When the attempt ended (ISO 8601). */
  at: string;
  status: Outcome['status'];
  reason?: string;
  message?: string;
  hint?: string;
  http_status?: number;
  retryable?: boolean;
  /** HTTP requests the engine made inside this attempt (its in-process retries). */
  http_attempts: number;
  possibly_duplicated?: boolean;
  duration_ms: number;
}

/** What travels on the queue for one event. */
export interface QueuedEvent {
  /** Stable id of this queued event: the same across attempts and replays. */
  job_id: string;
  /** The id of the integration record it was enqueued for. */
  integration: string;
  /** That record's credential-scope fingerprint: only a record reaching the same account delivers it. */
  scope: string;
  event: unknown;
  /** Queue attempts already made (failed ones: a finished event leaves the queue), oldest first. */
  history: AttemptSummary[];
  /** An earlier attempt may have reached the vendor: a later success may be a duplicate there. */
  possibly_duplicated?: boolean;
  /** Epoch ms of the first enqueue. */
  enqueued_at: number;
  /** Times the event came back from the dead-letter queue. */
  replays?: number;
  /**
   * The W3C trace context (`traceparent`, `tracestate`) of the enqueue's OpenTelemetry span, when one was
   * recording: the delivery span of every attempt continues it (run/otel.ts). Absent without an SDK.
   */
  trace_context?: Record<string, string>;
  /** History entries made before the last replay: attempts count afresh after them (the history is kept whole). */
  replayed_after?: number;
}

/** What `replay` did: dead letters put back, and those left (not retryable without `all`; no event to send). */
export interface ReplayResult {
  replayed: number;
  /** Left because the engine classed their last failure permanent (replay them with `all`). */
  not_retryable: number;
  /** Left because they hold no event this process can read (never parsed, or sealed with another key). */
  unreadable: number;
}

export interface Lease {
  /** The implementation's handle (a stream entry id, a Kafka offset). */
  id: string;
  message: QueuedEvent;
  /** The payload could not be read (someone wrote garbage on the queue): its text, for the dead letter. */
  unreadable?: string;
  /** The payload's text as it was queued (kept for a dead letter when the message cannot be written back). */
  raw?: string;
  /** The payload is sealed with a key this consumer does not have (`unreadable` holds it, still sealed). */
  sealed?: boolean;
  /** Taken over from a consumer that stopped renewing it (killed, hung): that one may have sent it. */
  reclaimed: boolean;
}

export type Settlement =
  /** Delivered or skipped: the event is done. */
  | { kind: 'done'; status: 'delivered' | 'skipped'; outcome: string }
  /** Failed, another attempt later: `message` (with the new history) comes back after `delay_ms`. */
  | { kind: 'retry'; outcome: string; message: QueuedEvent; delay_ms: number }
  /** Failed for good: `entry` is the dead-letter line (NDJSON, as `deliver --dead-letter` writes). */
  | { kind: 'dead'; outcome: string; job_id: string; entry: string };

/** Counts per integration, as `status --json` prints them. */
export interface QueueStatus {
  /** On the queue, not yet taken. */
  waiting: number;
  /** Taken by a worker, not yet settled (includes leases of dead workers until they are reclaimed). */
  in_flight: number;
  /** Failed attempts waiting for their next attempt. */
  scheduled_retry: number;
  /** Events delivered (cumulative). */
  delivered: number;
  /** Queue attempts that failed (cumulative; an event retried 3 times counts 3). */
  failed: number;
  /** Events in the dead-letter queue now. */
  dead_lettered: number;
  /** Events skipped (consent, not forwarded, disabled; cumulative). */
  skipped: number;
  /** Events put on the queue (cumulative). */
  enqueued: number;
  /** Events moved back from the dead-letter queue (cumulative). */
  replayed: number;
}

/** Which record a queue's events are for: its id keys the queue, the rest is stamped on each message or shown. */
export interface QueueRecord {
  /** The record's stable id: the queue's key. */
  id: string;
  /** Credential-scope fingerprint (Integration.credentialScope) stamped on every message. */
  scope: string;
  /** Display label, shown beside the id by `status`. */
  name?: string;
}

export interface DeliveryQueue {
  /** Make sure the integration's queue exists (idempotent); records its display name when given. */
  ensure(integration: string, name?: string): Promise<void>;
  /** Put events on the record's queue, each stamped with the record's id and scope; resolves with how many. */
  enqueue(record: QueueRecord, events: readonly unknown[]): Promise<number>;
  /**
   * Integrations with work due now (events waiting, a retry due, leases to check), oldest due first: at most
   * `limit` from `offset`; and how long until the next one is due. One request whatever their number.
   */
  ready(opts: { limit: number; offset?: number }): Promise<{ ids: string[]; nextInMs: number | undefined }>;
  /** Call `listener` when work is queued anywhere (a hint to look at `ready` again); returns its remover. */
  onWork(listener: () => void): () => void;
  /** Up to `max` leases of one integration, without waiting (leases of dead consumers first). */
  take(integration: string, max: number): Promise<Lease[]>;
  /** Keep leases alive; returns the ids this consumer no longer holds. */
  renew(integration: string, ids: readonly string[]): Promise<string[]>;
  /** Record the outcome and acknowledge, atomically. false: the lease was lost, nothing was recorded. */
  settle(integration: string, lease: Lease, settlement: Settlement): Promise<boolean>;
  /** Hand an event back without counting an attempt (drain). false: the lease was lost. */
  release(integration: string, lease: Lease, message: QueuedEvent): Promise<boolean>;
  status(integration: string): Promise<QueueStatus>;
  /** Integrations that have a queue. */
  integrations(): Promise<string[]>;
  /** Dead-letter lines, oldest first. */
  deadLetters(integration: string, opts?: { limit?: number }): Promise<string[]>;
  /** Display names of integrations (id → name), for those that recorded one. */
  names(): Promise<Record<string, string>>;
  /**
   * Move dead letters back onto the queue with fresh attempts and their history kept, stamped with
   * `record`'s scope (the operator replays them for that record): the retryable ones, or every one with `all`.
   */
  replay(record: QueueRecord, opts?: { limit?: number; all?: boolean }): Promise<ReplayResult>;
  /**
   * Mark due every one of these integrations whose stream holds entries (events a producer other than
   * `enqueue` wrote, or an entry of the scheduling set that was lost); resolves with how many.
   */
  sweep?(integrations: readonly string[]): Promise<number>;
  /**
   * Delete an integration's queue for good: waiting events, scheduled retries, dead letters, counts and
   * outcomes. Resolves with the events that were on it (waiting, in flight, scheduled, dead-lettered).
   */
  purge?(integration: string): Promise<number>;
  /** Record display names (id → name) for `status`, in one go. */
  label?(names: ReadonlyMap<string, string>): Promise<void>;
  /** Answer within `timeoutMs` or reject (readiness: the queue's server is reachable). */
  ping?(timeoutMs: number): Promise<void>;
  /**
   * Hold the keyspace-wide lease `name` for `ttlMs` (taken, or kept by its holder): true while this
   * consumer holds it. One worker of the fleet exports fleet-wide gauges, so that summing them adds up.
   */
  lease?(name: string, ttlMs: number): Promise<boolean>;
  /** Requests sent to the queue's server so far (a pipeline counts once): the bench divides it by events. */
  readonly roundTrips: number;
  close(): Promise<void>;
}
