/**
 * Local Salesforce Marketing Cloud emulator (node:http only, loopback only).
 *
 * Emulates the parts of Marketing Cloud Engagement that Signal talks to:
 *   - POST /v2/token                                        (auth host)
 *   - POST /interaction/v1/events                           (rest host) single journey entry
 *   - POST /interaction/v1/async/events                     (rest host) batched journey entry, ≤ 100 members
 *   - GET  /interaction/v1/async/events/status              (rest host) batched entry status, paged
 *   - POST|PUT /data/v1/async/dataextensions/key:{key}/rows (rest host) async DE insert / upsert
 *   - GET  /data/v1/async/{requestId}/status|results        (rest host)
 *
 * Response shapes follow /work/shared/notes/sfmc-api.md. The tenant is taken from the first DNS label of
 * `X-Forwarded-Host` (else `Host`), so a client can point at `http://127.0.0.1:PORT` and still say which
 * tenant and which service host (`auth` / `rest`) it meant.
 *
 * Faults are injected by a seeded PRNG (mulberry32) so a run is reproducible. For each eligible request
 * (see `apply_to`), one number is drawn per configured fault in this fixed order:
 *   reset_before_record, rate_limit_with_retry_after, rate_limit_blocked, unavailable, server_error,
 *   reset_after_record, slow, token_early_death (token requests only)
 * The first five/six are exclusive (the first hit wins); `slow` and `token_early_death` combine with a
 * normal answer. Pre-processing faults (the resets-before, 429s, 500, 503) are applied before the token is
 * checked, like a gateway would.
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { mulberry32 } from './prng.js';
import {
  firstHeader,
  intParam,
  isFormContentType,
  isPlainObject,
  parseForm,
  parseHost,
  prop,
  readBody,
  tryParseJson,
  type HostKind,
} from './http-util.js';

export { formatReceived } from './format.js';
export type { FormatReceivedOptions } from './format.js';

// ---------------------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------
// Constants (bodies copied from the API notes)
// ---------------------------------------------------------------------------------------------------------

export const ERROR_DOC_URL =
  'https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm';
export const RATE_LIMIT_DOC_URL =
  'https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/rate-limiting-errors.html';

export const NOT_AUTHORIZED_BODY = Object.freeze({
  documentation: ERROR_DOC_URL,
  errorcode: 0,
  message: 'Not Authorized',
});
export const INVALID_CLIENT_BODY = Object.freeze({
  error: 'invalid_client',
  error_description:
    'Client authentication failed. Make sure that the client ID and client secret are valid and that the package is installed and enabled.',
  error_uri: 'https://developer.salesforce.com/docs',
});
export const INVALID_GRANT_MID_BODY = Object.freeze({
  error: 'invalid_grant',
  error_description:
    "The client's access to the requested account_id (MID) is not allowed. Make sure the package is installed in, or has access to, that business unit.",
  error_uri: 'https://developer.salesforce.com/docs',
});
export const CONTACT_KEY_REQUIRED_MESSAGE = 'ContactKey is required and cannot be null or empty.';

export const DEFAULT_SCOPES = [
  'offline',
  'journeys_read',
  'journeys_write',
  'journeys_execute',
  'list_and_subscribers_read',
  'list_and_subscribers_write',
  'data_extensions_read',
  'data_extensions_write',
];

export const DEFAULT_CLIENT: EmulatorClient = {
  tenant: 'mc-abc123xyz',
  client_id: 'abc123clientid',
  client_secret: 'shh-secret-value',
};
export const DEFAULT_EVENT_DEFINITION_KEYS = ['datafly_lead_submitted', 'lead_submitted', 'identified', 'order_completed'];
export const DEFAULT_DATA_EXTENSIONS: DataExtensionDefinition[] = [{ key: 'datafly_orders', primary_key: ['order_id'] }];

export const MAX_BATCH_MEMBERS = 100;
export const MAX_DE_ROWS = 32_000;
export const MAX_DE_BODY_BYTES = 6_000_000;
/** Bodies above this are drained but not stored (→ 413, or 400 on the DE endpoint). */
const MAX_STORED_BODY = 8 * 1024 * 1024;
const MAX_PAGE_SIZE = 2500;

const FAULT_ORDER = [
  'reset_before_record',
  'rate_limit_with_retry_after',
  'rate_limit_blocked',
  'unavailable',
  'server_error',
  'reset_after_record',
] as const;
type ExclusiveFault = (typeof FAULT_ORDER)[number];
const ALL_TARGETS: FaultTarget[] = ['token', 'events', 'batch', 'rows'];

// ---------------------------------------------------------------------------------------------------------
// Internal types
// ---------------------------------------------------------------------------------------------------------

interface TokenInfo {
  tenant: string;
  client_id: string;
  account_id: string | null;
  scopes: string[];
  issued_at: number;
  expires_at: number;
  /** When the token actually stops working (≤ expires_at when it dies early). */
  dies_at: number;
}

interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface FaultDecision {
  exclusive: ExclusiveFault | null;
  slow: boolean;
  earlyDeath: boolean;
}

interface Ctx {
  req: IncomingMessage;
  rec: RecordedRequest;
  tenant: string;
  url: URL;
  bodyText: string;
  bodyBytes: number;
  bodyTruncated: boolean;
  params: Record<string, string>;
  faults: FaultDecision;
}

interface BatchRequest {
  requestId: string;
  tenant: string;
  at: number;
  members: { contactKey: string; status: 'Queued' | 'NotQueued'; eventInstanceId?: string; message?: string }[];
}

interface DeRowError {
  errorCode: string;
  message: string;
  status: 'Error';
  /** Emulator addition (not in the real API): 0-based index of the row in the request. */
  rowIndex: number;
  values: unknown;
}

interface DeRequest {
  requestId: string;
  tenant: string;
  mid: string | null;
  client_id: string;
  key: string;
  op: 'insert' | 'upsert';
  items: unknown[];
  callAt: number;
  pickupAt: number | null;
  completeAt: number | null;
  errors: DeRowError[];
}

type RouteHandler = (ctx: Ctx) => HandlerResult;
interface RouteMatch {
  category: FaultTarget | null;
  service: 'auth' | 'rest';
  handler: RouteHandler;
  params: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------

function restError(message: string, errorcode: number): { message: string; errorcode: number; documentation: string } {
  return { message, errorcode, documentation: ERROR_DOC_URL };
}

function json(status: number, body: unknown, headers?: Record<string, string>): HandlerResult {
  return headers ? { status, body, headers } : { status, body };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function nonEmptyKey(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return null;
  return value.trim() === '' ? null : value;
}

function emptyStats(): EmulatorStats {
  return {
    requests: 0,
    tokens_issued: 0,
    token_early_deaths: 0,
    events_recorded: 0,
    rows_recorded: 0,
    row_errors: 0,
    unauthorized: 0,
    rate_limited: 0,
    server_errors: 0,
    unavailable: 0,
    slow: 0,
    resets_before_record: 0,
    resets_after_record: 0,
    internal_errors: 0,
  };
}

function validateRate(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new RangeError(`faults.${name} must be between 0 and 1`);
}

// ---------------------------------------------------------------------------------------------------------
// The emulator
// ---------------------------------------------------------------------------------------------------------

export async function startMarketingCloudEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const bindHost = opts.host ?? '127.0.0.1';
  if (!isLoopback(bindHost)) throw new Error(`The emulator only binds to loopback addresses, not ${bindHost}`);

  const clients: EmulatorClient[] = (opts.clients ?? [DEFAULT_CLIENT]).map((c) => ({
    ...c,
    tenant: c.tenant.toLowerCase(),
    ...(c.account_ids ? { account_ids: c.account_ids.map(String) } : {}),
  }));
  const tenants = new Set(clients.map((c) => c.tenant));
  const defaultTenant = opts.default_tenant?.toLowerCase() ?? null;
  const enforceHostKind = opts.enforce_host_kind ?? true;
  let expiresIn = opts.expires_in ?? 1079;
  let eventKeys = new Set(opts.event_definition_keys ?? DEFAULT_EVENT_DEFINITION_KEYS);
  const dataExtensions = new Map<string, DataExtensionDefinition>();
  for (const de of opts.data_extensions ?? DEFAULT_DATA_EXTENSIONS) dataExtensions.set(de.key, de);
  const asyncProcessingMs = Math.max(0, opts.async_processing_ms ?? 0);

  // State ---------------------------------------------------------------------------------------------
  const tokens = new Map<string, TokenInfo>();
  let tokensSinceSweep = 0;
  const requests: RecordedRequest[] = [];
  const events: RecordedEvent[] = [];
  const rows: RecordedRow[] = [];
  const batchRequests = new Map<string, BatchRequest>();
  const deRequests = new Map<string, DeRequest>();
  /** tenant|key → primary-key string (or a sequence number when the DE has no primary key) → row. */
  const tables = new Map<string, Map<string, Record<string, unknown>>>();
  let tableSeq = 0;
  const stats = emptyStats();
  const pendingTimers = new Map<NodeJS.Timeout, () => void>();
  let closed = false;

  let faults: FaultOptions = {};
  let rng = mulberry32(1);
  let faultTargets = new Set<FaultTarget>(ALL_TARGETS);
  function setFaults(f: FaultOptions | undefined): void {
    const next = f ?? {};
    for (const name of [...FAULT_ORDER, 'slow', 'token_early_death'] as const) validateRate(name, next[name]);
    faults = { ...next };
    rng = mulberry32(next.seed ?? 1);
    faultTargets = new Set(next.apply_to ?? ALL_TARGETS);
  }
  setFaults(opts.faults);

  function decideFaults(category: FaultTarget | null): FaultDecision {
    const decision: FaultDecision = { exclusive: null, slow: false, earlyDeath: false };
    if (category === null || !faultTargets.has(category)) return decision;
    for (const name of FAULT_ORDER) {
      const rate = faults[name] ?? 0;
      if (rate <= 0) continue;
      const hit = rng() < rate;
      if (hit && decision.exclusive === null) decision.exclusive = name;
    }
    if ((faults.slow ?? 0) > 0 && rng() < (faults.slow ?? 0)) decision.slow = true;
    if (category === 'token' && (faults.token_early_death ?? 0) > 0 && rng() < (faults.token_early_death ?? 0)) {
      decision.earlyDeath = true;
    }
    return decision;
  }

  function sleep(ms: number): Promise<void> {
    if (closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pendingTimers.delete(timer);
        resolve();
      }, ms);
      pendingTimers.set(timer, resolve);
    });
  }

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      fn();
    }, ms);
    pendingTimers.set(timer, () => undefined);
  }

  // Tokens --------------------------------------------------------------------------------------------
  function sweepTokens(now: number): void {
    for (const [t, info] of tokens) if (info.dies_at <= now) tokens.delete(t);
  }

  function issueToken(client: EmulatorClient, accountId: string | null, scopes: string[], earlyDeath: boolean): { token: string; info: TokenInfo } {
    const now = Date.now();
    if (++tokensSinceSweep >= 1000) {
      tokensSinceSweep = 0;
      sweepTokens(now);
    }
    const lifetimeMs = expiresIn * 1000;
    const expiresAt = now + lifetimeMs;
    let diesAt = expiresAt;
    if (earlyDeath) {
      diesAt = Math.min(expiresAt, now + (faults.token_death_ms ?? Math.max(1, Math.round(lifetimeMs * 0.1))));
      stats.token_early_deaths++;
    }
    // Opaque, JWT-looking token (the real ones start with "eyJ"), random so it cannot be guessed.
    const token = `eyJhbGciOiJIUzI1NiIsImtpZCI6ImVtdWxhdG9yIn0.${randomBytes(32).toString('base64url')}`;
    const info: TokenInfo = {
      tenant: client.tenant,
      client_id: client.client_id,
      account_id: accountId,
      scopes,
      issued_at: now,
      expires_at: expiresAt,
      dies_at: diesAt,
    };
    tokens.set(token, info);
    stats.tokens_issued++;
    return { token, info };
  }

  /** Returns the token's info, or the 401 to answer. */
  function authorize(ctx: Ctx): TokenInfo | HandlerResult {
    const header = firstHeader(ctx.req.headers.authorization);
    const match = header ? /^\s*Bearer\s+(\S+)\s*$/i.exec(header) : null;
    const token = match?.[1];
    const info = token ? tokens.get(token) : undefined;
    const now = Date.now();
    if (!token || !info || info.dies_at <= now || info.tenant !== ctx.tenant) {
      if (token && info && info.dies_at <= now) tokens.delete(token);
      stats.unauthorized++;
      return json(401, NOT_AUTHORIZED_BODY);
    }
    return info;
  }

  function requireScope(info: TokenInfo, scope: string): HandlerResult | null {
    if (info.scopes.includes(scope)) return null;
    return json(403, restError('Insufficient Privileges', 20002));
  }

  // JSON body helpers for the REST endpoints -----------------------------------------------------------
  function restJsonBody(ctx: Ctx): { ok: true; value: unknown } | { ok: false; result: HandlerResult } {
    const ct = firstHeader(ctx.req.headers['content-type']);
    if (ct && !ct.toLowerCase().includes('json')) {
      return { ok: false, result: json(415, restError(`Unsupported Media Type '${ct}'. Use application/json.`, 415)) };
    }
    const parsed = tryParseJson(ctx.bodyText);
    if (!parsed.ok) return { ok: false, result: json(400, restError('The request body is not valid JSON.', 10000)) };
    return parsed;
  }

  // Handlers ------------------------------------------------------------------------------------------
  const handleToken: RouteHandler = (ctx) => {
    const ct = firstHeader(ctx.req.headers['content-type']);
    let params: Record<string, unknown> | null = null;
    if (isFormContentType(ct)) {
      params = parseForm(ctx.bodyText);
    } else {
      const parsed = tryParseJson(ctx.bodyText);
      if (parsed.ok && isPlainObject(parsed.value)) params = parsed.value;
      else if (!parsed.ok && ctx.bodyText.includes('=')) params = parseForm(ctx.bodyText);
    }
    if (!params) {
      return json(400, {
        error: 'invalid_request',
        error_description: 'The request body must be a JSON object or application/x-www-form-urlencoded.',
        error_uri: 'https://developer.salesforce.com/docs',
      });
    }
    if (params['grant_type'] !== 'client_credentials') {
      return json(400, {
        error: 'unsupported_grant_type',
        error_description: `Use "client_credentials" as the "grant_type" value.`,
        error_uri: 'https://developer.salesforce.com/docs',
      });
    }
    const clientId = params['client_id'];
    const clientSecret = params['client_secret'];
    const client = clients.find(
      (c) => c.tenant === ctx.tenant && c.client_id === clientId && c.client_secret === clientSecret,
    );
    if (!client || typeof clientId !== 'string' || typeof clientSecret !== 'string') {
      stats.unauthorized++;
      return json(401, INVALID_CLIENT_BODY);
    }
    const rawAccount = params['account_id'];
    let accountId: string | null = null;
    if (rawAccount !== undefined && rawAccount !== null) {
      accountId = typeof rawAccount === 'string' || typeof rawAccount === 'number' ? String(rawAccount).trim() : '';
      const allowed = client.account_ids === undefined || client.account_ids.includes(accountId);
      if (!/^\d+$/.test(accountId) || !allowed) {
        stats.unauthorized++;
        return json(401, INVALID_GRANT_MID_BODY);
      }
    }
    const granted = client.scopes ?? DEFAULT_SCOPES;
    let scopes = granted;
    const rawScope = params['scope'];
    if (typeof rawScope === 'string' && rawScope.trim() !== '') {
      const asked = rawScope.trim().split(/\s+/);
      const missing = asked.filter((s) => !granted.includes(s));
      if (missing.length > 0) {
        return json(400, {
          error: 'invalid_scope',
          error_description: `The requested scope is not granted to this package: ${missing.join(' ')}`,
          error_uri: 'https://developer.salesforce.com/docs',
        });
      }
      scopes = asked;
    }
    const { token } = issueToken(client, accountId, scopes, ctx.faults.earlyDeath);
    return json(200, {
      access_token: token,
      token_type: 'Bearer',
      expires_in: expiresIn,
      scope: scopes.join(' '),
      soap_instance_url: `https://${client.tenant}.soap.marketingcloudapis.com/`,
      rest_instance_url: `https://${client.tenant}.rest.marketingcloudapis.com/`,
    });
  };

  const handleEvent: RouteHandler = (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'journeys_execute');
    if (denied) return denied;
    const body = restJsonBody(ctx);
    if (!body.ok) return body.result;
    if (!isPlainObject(body.value)) return json(400, restError('The request body must be a JSON object.', 10000));
    const obj = body.value;
    const contactKey = nonEmptyKey(prop(obj, 'ContactKey'));
    if (contactKey === null) return json(400, restError(CONTACT_KEY_REQUIRED_MESSAGE, 10002));
    const edk = prop(obj, 'EventDefinitionKey');
    if (typeof edk !== 'string' || edk.trim() === '') {
      return json(400, restError('EventDefinitionKey is required and cannot be null or empty.', 10002));
    }
    if (!eventKeys.has(edk)) {
      return json(
        400,
        restError(`Unable to queue the event: EventDefinitionKey '${edk}' was not found or is not bound to an active journey.`, 10000),
      );
    }
    const data = prop(obj, 'Data');
    if (data !== undefined && data !== null && !isPlainObject(data)) {
      return json(400, restError('Data must be a JSON object.', 10000));
    }
    const eventInstanceId = randomUUID();
    events.push({
      at: Date.now(),
      tenant: auth.tenant,
      mid: auth.account_id,
      client_id: auth.client_id,
      source: 'single',
      requestId: null,
      eventInstanceId,
      ContactKey: contactKey,
      EventDefinitionKey: edk,
      Data: data ?? null,
    });
    stats.events_recorded++;
    return json(201, { eventInstanceId });
  };

  const handleBatch: RouteHandler = (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'journeys_execute');
    if (denied) return denied;
    const body = restJsonBody(ctx);
    if (!body.ok) return body.result;
    if (!isPlainObject(body.value)) return json(400, restError('The request body must be a JSON object.', 10000));
    const obj = body.value;
    const members = prop(obj, 'members');
    if (!Array.isArray(members) || members.length === 0 || members.length > MAX_BATCH_MEMBERS) {
      const n = Array.isArray(members) ? members.length : 0;
      return json(
        400,
        restError(`members must contain between 1 and ${MAX_BATCH_MEMBERS} contacts per request (received ${n}).`, 10000),
      );
    }
    const edk = prop(obj, 'eventDefinitionKey');
    if (typeof edk !== 'string' || edk.trim() === '') {
      return json(400, restError('eventDefinitionKey is required and cannot be null or empty.', 10002));
    }
    if (!eventKeys.has(edk)) {
      return json(
        400,
        restError(`Unable to queue the event: EventDefinitionKey '${edk}' was not found or is not bound to an active journey.`, 10000),
      );
    }
    const requestId = randomUUID();
    const now = Date.now();
    const out: BatchRequest['members'] = [];
    for (const m of members) {
      const contactKey = isPlainObject(m) ? nonEmptyKey(prop(m, 'contactKey')) : null;
      const data = isPlainObject(m) ? prop(m, 'data') : undefined;
      if (contactKey === null) {
        out.push({ contactKey: '', status: 'NotQueued', message: CONTACT_KEY_REQUIRED_MESSAGE });
        continue;
      }
      if (data !== undefined && data !== null && !isPlainObject(data)) {
        out.push({ contactKey, status: 'NotQueued', message: 'data must be a JSON object.' });
        continue;
      }
      const eventInstanceId = randomUUID();
      out.push({ contactKey, status: 'Queued', eventInstanceId });
      events.push({
        at: now,
        tenant: auth.tenant,
        mid: auth.account_id,
        client_id: auth.client_id,
        source: 'batch',
        requestId,
        eventInstanceId,
        ContactKey: contactKey,
        EventDefinitionKey: edk,
        Data: data ?? null,
      });
      stats.events_recorded++;
    }
    batchRequests.set(requestId, { requestId, tenant: auth.tenant, at: now, members: out });
    const notQueued = out.filter((m) => m.status === 'NotQueued').length;
    return json(202, { requestId, count: out.length, notQueuedCount: notQueued, members: out });
  };

  const handleBatchStatus: RouteHandler = (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'journeys_read');
    if (denied) return denied;
    const requestId = ctx.url.searchParams.get('requestId');
    if (!requestId) return json(400, restError('requestId is required.', 10002));
    const type = ctx.url.searchParams.get('type');
    if (type !== null && !['errored', 'queued', 'processed'].includes(type)) {
      return json(400, restError("type must be one of 'errored', 'queued', 'processed'.", 10000));
    }
    const batch = batchRequests.get(requestId);
    if (!batch || batch.tenant !== auth.tenant) {
      return json(404, restError(`Request '${requestId}' was not found.`, 10000));
    }
    const processed = Date.now() - batch.at >= asyncProcessingMs;
    const all = batch.members.map((m) => {
      const status = m.status === 'NotQueued' ? 'Errored' : processed ? 'Processed' : 'Queued';
      return {
        contactKey: m.contactKey,
        status,
        ...(m.eventInstanceId ? { eventInstanceId: m.eventInstanceId } : {}),
        ...(m.message ? { message: m.message } : {}),
      };
    });
    const wanted =
      type === 'errored'
        ? all.filter((m) => m.status === 'Errored')
        : type === 'queued'
          ? all.filter((m) => m.status !== 'Errored') // queued includes those since processed
          : type === 'processed'
            ? all.filter((m) => m.status === 'Processed')
            : all;
    const page = intParam(ctx.url.searchParams.get('$page'), 1, Number.MAX_SAFE_INTEGER);
    const pageSize = intParam(ctx.url.searchParams.get('$pageSize'), 50, MAX_PAGE_SIZE);
    const items = wanted.slice((page - 1) * pageSize, page * pageSize);
    return json(200, { requestId, type: type ?? 'all', page, pageSize, count: wanted.length, items });
  };

  // Data extensions -------------------------------------------------------------------------------------
  function columnIndex(def: DataExtensionDefinition): Map<string, { name: string; required: boolean }> | null {
    if (!def.columns) return null;
    const m = new Map<string, { name: string; required: boolean }>();
    for (const c of def.columns) m.set(c.name.toLowerCase(), { name: c.name, required: !!c.required });
    return m;
  }

  function isBlank(v: unknown): boolean {
    return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
  }

  function validateRow(def: DataExtensionDefinition, item: unknown): { errorCode: string; message: string } | null {
    if (!isPlainObject(item)) {
      return { errorCode: 'InvalidRow', message: 'A row must be a JSON object of column names and values.' };
    }
    const cols = columnIndex(def);
    if (cols) {
      for (const name of Object.keys(item)) {
        if (!cols.has(name.toLowerCase())) {
          return { errorCode: 'InvalidColumnName', message: `The column '${name}' does not exist in data extension '${def.key}'.` };
        }
      }
    }
    const required = new Set<string>();
    for (const c of def.columns ?? []) if (c.required) required.add(c.name);
    for (const c of def.primary_key ?? []) required.add(c);
    for (const name of required) {
      if (isBlank(prop(item, name))) {
        return { errorCode: 'RequiredColumnMissing', message: `The required column '${name}' is missing or empty.` };
      }
    }
    return null;
  }

  function processDeRequest(r: DeRequest): void {
    const def = dataExtensions.get(r.key);
    if (!def) return;
    const now = Date.now();
    r.pickupAt = now;
    const tableKey = `${r.tenant}|${r.key}`;
    let table = tables.get(tableKey);
    if (!table) {
      table = new Map();
      tables.set(tableKey, table);
    }
    const pk = def.primary_key ?? [];
    r.items.forEach((item, rowIndex) => {
      const invalid = validateRow(def, item);
      if (invalid || !isPlainObject(item)) {
        const e = invalid ?? { errorCode: 'InvalidRow', message: 'Invalid row.' };
        r.errors.push({ ...e, status: 'Error', rowIndex, values: item });
        stats.row_errors++;
        return;
      }
      let rowKey: string;
      if (pk.length > 0) {
        rowKey = JSON.stringify(pk.map((c) => String(prop(item, c))));
        if (r.op === 'insert' && table.has(rowKey)) {
          const desc = pk.map((c) => `${c}=${String(prop(item, c))}`).join(', ');
          r.errors.push({
            errorCode: 'DuplicatePrimaryKey',
            message: `Violation of PRIMARY KEY constraint: a row with primary key (${desc}) already exists in data extension '${r.key}'.`,
            status: 'Error',
            rowIndex,
            values: item,
          });
          stats.row_errors++;
          return;
        }
      } else {
        rowKey = `#${++tableSeq}`;
      }
      table.set(rowKey, item);
      rows.push({
        at: now,
        tenant: r.tenant,
        mid: r.mid,
        client_id: r.client_id,
        key: r.key,
        op: r.op,
        requestId: r.requestId,
        rowIndex,
        values: item,
      });
      stats.rows_recorded++;
    });
    r.completeAt = Date.now();
  }

  function deValidationError(requestId: string, resultCode: string, message: string): HandlerResult {
    return json(400, {
      requestId,
      resultMessages: [{ resultType: 'Validation', resultClass: 'Error', resultCode, message }],
    });
  }

  const handleRows = (op: 'insert' | 'upsert'): RouteHandler => (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'data_extensions_write');
    if (denied) return denied;
    const requestId = randomUUID();
    const key = ctx.params['key'] ?? '';
    if (ctx.bodyBytes > MAX_DE_BODY_BYTES) {
      return deValidationError(
        requestId,
        'RequestTooLarge',
        `The request body is ${ctx.bodyBytes} bytes; the maximum is ${MAX_DE_BODY_BYTES} bytes.`,
      );
    }
    const body = restJsonBody(ctx);
    if (!body.ok) {
      if (body.result.status === 415) return body.result;
      return deValidationError(requestId, 'InvalidJson', 'The request body is not valid JSON.');
    }
    const def = dataExtensions.get(key);
    if (!def) {
      return deValidationError(requestId, 'CustomObjectNotFound', `Data extension with key '${key}' was not found.`);
    }
    const items = isPlainObject(body.value) ? prop(body.value, 'items') : undefined;
    if (!Array.isArray(items)) {
      return deValidationError(requestId, 'InvalidRequest', 'The request body must be {"items":[...]}.');
    }
    if (items.length === 0) return deValidationError(requestId, 'NoRows', 'The request must contain at least one item.');
    if (items.length > MAX_DE_ROWS) {
      return deValidationError(
        requestId,
        'TooManyRows',
        `The request contains ${items.length} items; the maximum is ${MAX_DE_ROWS} rows per request.`,
      );
    }
    const r: DeRequest = {
      requestId,
      tenant: auth.tenant,
      mid: auth.account_id,
      client_id: auth.client_id,
      key,
      op,
      items,
      callAt: Date.now(),
      pickupAt: null,
      completeAt: null,
      errors: [],
    };
    deRequests.set(requestId, r);
    if (asyncProcessingMs === 0) processDeRequest(r);
    else
      later(asyncProcessingMs, () => {
        try {
          processDeRequest(r);
        } catch (err) {
          // Never crash the process from a timer: mark the request failed instead.
          stats.internal_errors++;
          r.errors.push({
            errorCode: 'InternalError',
            message: `Internal emulator error: ${err instanceof Error ? err.message : String(err)}`,
            status: 'Error',
            rowIndex: -1,
            values: null,
          });
          r.completeAt = Date.now();
        }
      });
    return json(202, { requestId, resultMessages: [] });
  };

  function findDeRequest(ctx: Ctx, auth: TokenInfo): DeRequest | HandlerResult {
    const requestId = ctx.params['requestId'] ?? '';
    const r = deRequests.get(requestId);
    if (!r || r.tenant !== auth.tenant) {
      return json(404, {
        requestId,
        resultMessages: [
          { resultType: 'Validation', resultClass: 'Error', resultCode: 'RequestNotFound', message: `Request '${requestId}' was not found.` },
        ],
      });
    }
    return r;
  }

  const handleDeStatus: RouteHandler = (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'data_extensions_read');
    if (denied) return denied;
    const r = findDeRequest(ctx, auth);
    if ('status' in r) return r;
    const complete = r.completeAt !== null;
    const hasErrors = complete && r.errors.length > 0;
    return json(200, {
      status: {
        callDateTime: iso(r.callAt),
        completionDateTime: iso(r.completeAt),
        hasErrors,
        pickupDateTime: iso(r.pickupAt),
        requestStatus: complete ? 'Complete' : 'Pending',
        resultStatus: hasErrors ? 'Error' : 'OK',
        requestId: r.requestId,
      },
      requestId: r.requestId,
    });
  };

  const handleDeResults: RouteHandler = (ctx) => {
    const auth = authorize(ctx);
    if ('status' in auth) return auth;
    const denied = requireScope(auth, 'data_extensions_read');
    if (denied) return denied;
    const r = findDeRequest(ctx, auth);
    if ('status' in r) return r;
    const page = intParam(ctx.url.searchParams.get('$page') ?? ctx.url.searchParams.get('page'), 1, Number.MAX_SAFE_INTEGER);
    const pageSize = intParam(
      ctx.url.searchParams.get('$pageSize') ?? ctx.url.searchParams.get('pageSize'),
      50,
      MAX_PAGE_SIZE,
    );
    // Only errored rows are listed. `rowIndex` is the emulator's addition (the real API does not document
    // one) so a client can map each error back to the row it sent.
    const items = r.errors.slice((page - 1) * pageSize, page * pageSize);
    return json(200, { page, pageSize, count: r.errors.length, items });
  };

  // Routing -------------------------------------------------------------------------------------------
  function matchRoute(method: string, path: string): RouteMatch | HandlerResult {
    const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    const notAllowed = (allow: string): HandlerResult =>
      json(405, restError(`Method ${method} is not allowed on ${p}.`, 405), { allow });
    if (p === '/v2/token') {
      return method === 'POST'
        ? { category: 'token', service: 'auth', handler: handleToken, params: {} }
        : notAllowed('POST');
    }
    if (p === '/interaction/v1/events') {
      return method === 'POST'
        ? { category: 'events', service: 'rest', handler: handleEvent, params: {} }
        : notAllowed('POST');
    }
    if (p === '/interaction/v1/async/events') {
      return method === 'POST'
        ? { category: 'batch', service: 'rest', handler: handleBatch, params: {} }
        : notAllowed('POST');
    }
    if (p === '/interaction/v1/async/events/status') {
      return method === 'GET'
        ? { category: null, service: 'rest', handler: handleBatchStatus, params: {} }
        : notAllowed('GET');
    }
    const segs = p.split('/');
    // ['', 'data', 'v1', 'async', 'dataextensions', 'key:xxx', 'rows']
    if (segs.length === 7 && segs[1] === 'data' && segs[2] === 'v1' && segs[3] === 'async' && segs[4] === 'dataextensions' && segs[6] === 'rows') {
      let seg: string;
      try {
        seg = decodeURIComponent(segs[5] ?? '');
      } catch {
        seg = segs[5] ?? '';
      }
      const m = /^key:(.+)$/i.exec(seg);
      if (m?.[1]) {
        const params = { key: m[1] };
        if (method === 'POST') return { category: 'rows', service: 'rest', handler: handleRows('insert'), params };
        if (method === 'PUT') return { category: 'rows', service: 'rest', handler: handleRows('upsert'), params };
        return notAllowed('POST, PUT');
      }
    }
    // ['', 'data', 'v1', 'async', '{requestId}', 'status'|'results']
    if (segs.length === 6 && segs[1] === 'data' && segs[2] === 'v1' && segs[3] === 'async' && segs[4] && segs[4] !== 'dataextensions') {
      const params = { requestId: segs[4] };
      if (segs[5] === 'status' || segs[5] === 'results') {
        if (method !== 'GET') return notAllowed('GET');
        return {
          category: null,
          service: 'rest',
          handler: segs[5] === 'status' ? handleDeStatus : handleDeResults,
          params,
        };
      }
    }
    return json(404, restError('Not Found', 404));
  }

  // Request plumbing ----------------------------------------------------------------------------------
  function send(res: ServerResponse, rec: RecordedRequest, result: HandlerResult): void {
    if (res.destroyed || res.writableEnded) return;
    const payload = result.body === undefined ? '' : JSON.stringify(result.body);
    rec.status = result.status;
    rec.response_body = payload;
    res.writeHead(result.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(payload)),
      ...result.headers,
    });
    res.end(payload);
  }

  function destroy(req: IncomingMessage, rec: RecordedRequest): void {
    rec.status = 0;
    rec.response_body = '';
    req.socket.destroy();
  }

  function preFaultResult(kind: ExclusiveFault): HandlerResult | null {
    switch (kind) {
      case 'rate_limit_with_retry_after': {
        stats.rate_limited++;
        const n = faults.retry_after_seconds ?? 1;
        return json(
          429,
          { message: 'Rate limit exceeded', errorcode: 50100, retryAfter: n, documentation: RATE_LIMIT_DOC_URL },
          { 'retry-after': String(n) },
        );
      }
      case 'rate_limit_blocked':
        stats.rate_limited++;
        return json(429, {
          message: 'Your requests are temporarily blocked.',
          errorcode: 50200,
          documentation: RATE_LIMIT_DOC_URL,
        });
      case 'unavailable':
        stats.unavailable++;
        return json(503, restError('Service Unavailable', 503));
      case 'server_error':
        stats.server_errors++;
        return json(500, restError('An internal server error occurred.', 500));
      default:
        return null;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse, current: { rec?: RecordedRequest }): Promise<void> {
    let body;
    try {
      body = await readBody(req, MAX_STORED_BODY);
    } catch {
      // Client went away mid-body: nothing to answer.
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const forwarded = firstHeader(req.headers['x-forwarded-host']);
    const hostInfo = parseHost(forwarded && forwarded.trim() !== '' ? forwarded : firstHeader(req.headers.host));
    const tenant = hostInfo.tenant ?? defaultTenant;
    const ct = firstHeader(req.headers['content-type']);
    let parsedBody: unknown = null;
    if (!body.truncated) {
      if (isFormContentType(ct)) parsedBody = parseForm(body.text);
      else {
        const p = tryParseJson(body.text);
        parsedBody = p.ok ? (p.value ?? null) : null;
      }
    }
    const rec: RecordedRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      tenant,
      headers: { ...(req.headers as IncomingHttpHeaders) },
      body: body.text,
      json: parsedBody,
      status: 0,
      query: url.search,
      host_kind: hostInfo.kind,
      bytes: body.bytes,
      fault: null,
      response_body: '',
    };
    requests.push(rec);
    current.rec = rec;
    stats.requests++;

    if (tenant === null || !tenants.has(tenant)) {
      send(res, rec, json(404, restError('Not Found', 404)));
      return;
    }
    const route = matchRoute(rec.method, url.pathname);
    if ('status' in route) {
      send(res, rec, route);
      return;
    }
    if (enforceHostKind && hostInfo.kind !== null && hostInfo.kind !== route.service) {
      send(res, rec, json(404, restError('Not Found', 404)));
      return;
    }
    if (body.truncated && route.category !== 'rows') {
      send(res, rec, json(413, restError('Request Entity Too Large', 413)));
      return;
    }

    const decision = decideFaults(route.category);
    if (decision.exclusive === 'reset_before_record') {
      rec.fault = 'reset_before_record';
      stats.resets_before_record++;
      destroy(req, rec);
      return;
    }
    const pre = decision.exclusive ? preFaultResult(decision.exclusive) : null;
    if (pre) {
      rec.fault = decision.exclusive;
      if (decision.slow) {
        stats.slow++;
        await sleep(faults.slow_ms ?? 200);
      }
      send(res, rec, pre);
      return;
    }

    const ctx: Ctx = {
      req,
      rec,
      tenant,
      url,
      bodyText: body.text,
      bodyBytes: body.bytes,
      bodyTruncated: body.truncated,
      params: route.params,
      faults: decision,
    };
    const result = route.handler(ctx);

    if (decision.exclusive === 'reset_after_record') {
      rec.fault = 'reset_after_record';
      stats.resets_after_record++;
      destroy(req, rec);
      return;
    }
    if (decision.earlyDeath) rec.fault = 'token_early_death';
    if (decision.slow) {
      rec.fault ??= 'slow';
      stats.slow++;
      await sleep(faults.slow_ms ?? 200);
    }
    send(res, rec, result);
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const current: { rec?: RecordedRequest } = {};
    handle(req, res, current).catch((err: unknown) => {
      try {
        stats.internal_errors++;
        const last = current.rec;
        const message = err instanceof Error ? err.message : String(err);
        if (!res.headersSent && !res.destroyed) {
          const payload = JSON.stringify(restError(`Internal emulator error: ${message}`, 500));
          if (last) {
            last.status = 500;
            last.response_body = payload;
          }
          res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(payload)) });
          res.end(payload);
        } else {
          res.destroy();
        }
      } catch {
        req.socket.destroy();
      }
    });
  });
  // Long idle keep-alive so clients' pooled sockets are not closed under them (which would look like
  // spurious resets in fault-counting tests).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ port: opts.port ?? 0, host: bindHost, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  const emulator: Emulator = {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    host: address.address,
    clients,
    requests,
    tokenRequests: () => requests.filter((r) => r.path === '/v2/token'),
    events: () => events.slice(),
    rows: (key?: string) => (key === undefined ? rows.slice() : rows.filter((r) => r.key === key)),
    table: (key: string, tenant?: string) => {
      const t = (tenant ?? clients[0]?.tenant ?? '').toLowerCase();
      return [...(tables.get(`${t}|${key}`)?.values() ?? [])];
    },
    stats,
    setExpiresIn(seconds: number) {
      if (!(seconds > 0)) throw new RangeError('expires_in must be positive');
      expiresIn = seconds;
    },
    setFaults,
    setEventDefinitionKeys(keys: string[]) {
      eventKeys = new Set(keys);
    },
    revokeTokens() {
      tokens.clear();
    },
    reset() {
      requests.length = 0;
      events.length = 0;
      rows.length = 0;
      batchRequests.clear();
      deRequests.clear();
      tables.clear();
      Object.assign(stats, emptyStats());
    },
    close() {
      if (closed) return Promise.resolve();
      closed = true;
      for (const [timer, resolve] of pendingTimers) {
        clearTimeout(timer);
        resolve();
      }
      pendingTimers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return emulator;
}
