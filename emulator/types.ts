/** Public types of the Marketing Cloud emulator (re-exported by marketing-cloud.ts). */
import type { HostKind } from './http-util.js';

export interface EmulatorClient {
  tenant: string;
  client_id: string;
  client_secret: string;
  /** MIDs this client may request; absent = any. */
  account_ids?: string[];
  /** Scopes granted to the package; absent = DEFAULT_SCOPES. A token request may ask for a subset. */
  scopes?: string[];
}

export interface FaultRates {
  // each 0..1, probability per eligible request; deterministic PRNG from `seed`
  /** 429 + Retry-After header + body errorcode 50100. */
  rate_limit_with_retry_after?: number;
  /** 429 WITHOUT Retry-After, body errorcode 50200. */
  rate_limit_blocked?: number;
  /** 500. */
  server_error?: number;
  /** 503. */
  unavailable?: number;
  /** Destroy the socket before the event is recorded. */
  reset_before_record?: number;
  /** Record the event(s) (or issue the token / accept the rows), then destroy the socket without answering. */
  reset_after_record?: number;
  /** Delay the answer by `slow_ms` (default 200). The work (recording) is done before the delay. */
  slow?: number;
  /** An issued token dies after `token_death_ms`, or 0.1 of its stated lifetime. Token requests only. */
  token_early_death?: number;
}

export type FaultTarget = 'token' | 'events' | 'batch' | 'rows';

export type FaultOptions = FaultRates & {
  seed?: number;
  retry_after_seconds?: number;
  slow_ms?: number;
  token_death_ms?: number;
  apply_to?: FaultTarget[];
};

export interface DataExtensionDefinition {
  key: string;
  /** When declared, a row with a column not listed here is an error. Names match case-insensitively. */
  columns?: { name: string; required?: boolean }[];
  /** Primary key columns (implicitly required). Insert of an existing key → DuplicatePrimaryKey. */
  primary_key?: string[];
}

export interface EmulatorOptions {
  port?: number; // default 0
  host?: string; // default 127.0.0.1 (must be a loopback address)
  clients?: EmulatorClient[];
  /** Seconds reported and enforced, default 1079. */
  expires_in?: number;
  event_definition_keys?: string[];
  data_extensions?: DataExtensionDefinition[];
  faults?: FaultOptions;
  /** How long async DE requests (and batched entries) stay Pending/queued before Complete/processed. */
  async_processing_ms?: number;
  /** Tenant used when neither X-Forwarded-Host nor Host names one (IP literal / localhost). Default: none → 404. */
  default_tenant?: string;
  /**
   * When the host names a service (`x.auth...` / `x.rest...`), require the matching one: /v2/token only on
   * `auth`, the REST endpoints only on `rest` (else 404, as the real hosts do). Default true.
   */
  enforce_host_kind?: boolean;
}

export interface RecordedRequest {
  at: number;
  method: string;
  /** Path without the query string. */
  path: string;
  tenant: string | null;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** Parsed body: JSON, or an object of fields for form-urlencoded bodies; null when unparseable/empty. */
  json: unknown;
  /** Status answered, or 0 when the socket was reset (or the answer is still pending). */
  status: number;
  // --- additions ---
  /** Query string including the leading '?', or ''. */
  query: string;
  /** Second host label when it named a service: 'auth' | 'rest' | 'soap'. */
  host_kind: HostKind | null;
  /** Bytes received in the body. */
  bytes: number;
  /** Fault injected into this request, if any. */
  fault: keyof FaultRates | null;
  /** The JSON text answered ('' for a reset). */
  response_body: string;
}

export interface RecordedEvent {
  at: number;
  tenant: string;
  /** MID of the token used (null when the token was issued without account_id). */
  mid: string | null;
  client_id: string;
  source: 'single' | 'batch';
  /** requestId of the batched request (batch members only). */
  requestId: string | null;
  eventInstanceId: string;
  ContactKey: string;
  EventDefinitionKey: string;
  Data: unknown;
}

export interface RecordedRow {
  at: number;
  tenant: string;
  mid: string | null;
  client_id: string;
  key: string;
  op: 'insert' | 'upsert';
  requestId: string;
  /** 0-based index of the row in its request. */
  rowIndex: number;
  values: Record<string, unknown>;
}

export interface EmulatorStats {
  requests: number;
  tokens_issued: number;
  token_early_deaths: number;
  events_recorded: number;
  rows_recorded: number;
  row_errors: number;
  unauthorized: number;
  rate_limited: number;
  server_errors: number;
  unavailable: number;
  slow: number;
  resets_before_record: number;
  resets_after_record: number;
  /** Errors thrown inside the emulator's own handlers (answered 500); should stay 0. */
  internal_errors: number;
}

export interface Emulator {
  url: string;
  port: number;
  host: string;
  /** Configured clients (includes secrets; used by formatReceived to redact them). */
  readonly clients: readonly EmulatorClient[];
  /** Every request received, in order, with the status answered (or 0 for a reset). */
  requests: RecordedRequest[];
  tokenRequests(): RecordedRequest[];
  /** Every journey event RECORDED (single + batched members), in order. */
  events(): RecordedEvent[];
  /** Every data extension row recorded (each accepted insert/upsert, in order), optionally for one key. */
  rows(key?: string): RecordedRow[];
  /** Current content of a data extension (after upserts replaced rows) for a tenant (default: first client's). */
  table(key: string, tenant?: string): Record<string, unknown>[];
  stats: EmulatorStats;
  setExpiresIn(seconds: number): void;
  setFaults(f: EmulatorOptions['faults']): void;
  setEventDefinitionKeys(keys: string[]): void;
  /** Every issued token becomes invalid (next call → 401). */
  revokeTokens(): void;
  /** Clear recordings (requests, events, rows, async requests, DE tables) and stats. Tokens and faults stay. */
  reset(): void;
  close(): Promise<void>;
}

