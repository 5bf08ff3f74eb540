/** The one result every event gets from every integration, and the shape the runtime logs and counts. */
import type { AttemptRecord } from './http.js';
import type { Reason } from '../errors.js';

export type OutcomeStatus = Outcome['status'];

/** What every outcome carries, whatever its status. */
interface OutcomeCommon {
  /** The Signal event's id, so an operator can trace it (null only when the event had none). */
  event_id: string | null;
  /** Integration record name (a label) and vendor. */
  integration: string;
  /** The record's stable id, when it has one (the fleet requires it). */
  integration_id?: string;
  vendor: string;
  /** The Signal event name, when the event had one. */
  event?: string;
  /** Human-readable explanation; never contains a secret. */
  message?: string;
  /** The HTTP status of the vendor's last answer, when there was one. */
  http_status?: number;
  vendor_code?: string | number;
  vendor_message?: string;
  /** Whether sending the same event again later could succeed. */
  retryable?: boolean;
  /** What the operator should do, from the spec's error rules. */
  hint?: string;
  /** The vendor's id for a delivered event. */
  response_id?: string;
  /** Fields kept from the vendor's answer (spec `success.keep`). */
  response?: Record<string, unknown>;
  /** HTTP attempts made for this event (auth requests not included). */
  attempts: number;
  /** A send attempt broke after the request went out: the vendor may hold it, so sending it again may duplicate it. */
  possibly_duplicated?: boolean;
  duration_ms: number;
  /** Events that travelled in the same batch request (batching specs only). */
  batch_size?: number;
  /** Line number in the input, set by callers that read events from a file. */
  line?: number;
}

/** The vendor accepted the event: `http_status` is its answer's status. */
export interface DeliveredOutcome extends OutcomeCommon {
  status: 'delivered';
  http_status: number;
  /** A delivered outcome has no reason. */
  reason?: undefined;
}

/** The event was not sent on purpose (integration disabled, event not forwarded, consent missing, a blank line): `reason` says which. */
export interface SkippedOutcome extends OutcomeCommon {
  status: 'skipped';
  /** Machine-readable reason (one of `REASONS`, each documented there). */
  reason: Reason;
}

/** The event was not delivered: `reason` says why, `message` (and often `hint`) what to do. */
export interface FailedOutcome extends OutcomeCommon {
  status: 'failed';
  /** Machine-readable reason (one of `REASONS`, each documented there). */
  reason: Reason;
}

/**
 * The one result every event gets: a union discriminated on `status`, so
 * `if (o.status === 'failed') o.reason` needs no cast, and `o.status === 'delivered'` gives `o.http_status: number`.
 */
export type Outcome = DeliveredOutcome | SkippedOutcome | FailedOutcome;

/** Omit that keeps a union a union (one Omit per member). */
export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One HTTP attempt made for an event: `stage` is `send` or `auth` (then `auth_stage` names the auth stage). */
export type AttemptDetail = AttemptRecord & { stage: string; auth_stage?: string };

/** What the outcome hook receives besides the outcome: per-attempt detail (auth requests included) for metrics and operators. */
export interface OutcomeDetail {
  attempts: AttemptDetail[];
  /** The event went into a batch (batching specs). */
  queued?: boolean;
}
