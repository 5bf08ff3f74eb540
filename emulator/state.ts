/**
 * The emulator's mutable state and the small helpers every API handler shares. Handlers are plain
 * functions of (state, request context) so each API lives in its own file.
 */
import type { IncomingMessage } from 'node:http';
import { mulberry32 } from './prng.js';
import { firstHeader, tryParseJson } from './http-util.js';
import { DEFAULT_CLIENT, DEFAULT_DATA_EXTENSIONS, DEFAULT_EVENT_DEFINITION_KEYS, ERROR_DOC_URL } from './constants.js';
import type {
  DataExtensionDefinition,
  EmulatorClient,
  EmulatorOptions,
  EmulatorStats,
  FaultOptions,
  FaultTarget,
  RecordedEvent,
  RecordedRequest,
  RecordedRow,
} from './types.js';

/** Exclusive faults in the order they are drawn (see marketing-cloud.ts); the first hit wins. */
export const FAULT_ORDER = [
  'reset_before_record',
  'rate_limit_with_retry_after',
  'rate_limit_blocked',
  'unavailable',
  'server_error',
  'reset_after_record',
] as const;
export type ExclusiveFault = (typeof FAULT_ORDER)[number];

export interface TokenInfo {
  tenant: string;
  client_id: string;
  account_id: string | null;
  scopes: string[];
  issued_at: number;
  expires_at: number;
  /** When the token actually stops working (≤ expires_at when it dies early). */
  dies_at: number;
}

export interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface FaultDecision {
  exclusive: ExclusiveFault | null;
  slow: boolean;
  earlyDeath: boolean;
}

export interface Ctx {
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

export interface BatchRequest {
  requestId: string;
  tenant: string;
  at: number;
  members: { contactKey: string; status: 'Queued' | 'NotQueued'; eventInstanceId?: string; message?: string }[];
}

export interface DeRowError {
  errorCode: string;
  message: string;
  status: 'Error';
  /** Emulator addition (not in the real API): 0-based index of the row in the request. */
  rowIndex: number;
  values: unknown;
}

export interface DeRequest {
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

export type RouteHandler = (s: EmulatorState, ctx: Ctx) => HandlerResult;
export interface RouteMatch {
  category: FaultTarget | null;
  service: 'auth' | 'rest';
  handler: RouteHandler;
  params: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

export interface EmulatorState {
  clients: EmulatorClient[];
  tenants: Set<string>;
  defaultTenant: string | null;
  enforceHostKind: boolean;
  expiresIn: number;
  eventKeys: Set<string>;
  dataExtensions: Map<string, DataExtensionDefinition>;
  asyncProcessingMs: number;
  tokens: Map<string, TokenInfo>;
  tokensSinceSweep: number;
  requests: RecordedRequest[];
  events: RecordedEvent[];
  rows: RecordedRow[];
  batchRequests: Map<string, BatchRequest>;
  deRequests: Map<string, DeRequest>;
  /** tenant|key → primary-key string (or a sequence number when the DE has no primary key) → row. */
  tables: Map<string, Map<string, Record<string, unknown>>>;
  tableSeq: number;
  stats: EmulatorStats;
  pendingTimers: Map<NodeJS.Timeout, () => void>;
  closed: boolean;
  faults: FaultOptions;
  rng: () => number;
  faultTargets: Set<FaultTarget>;
}

export function createState(opts: EmulatorOptions): EmulatorState {
  const clients: EmulatorClient[] = (opts.clients ?? [DEFAULT_CLIENT]).map((c) => ({
    ...c,
    tenant: c.tenant.toLowerCase(),
    ...(c.account_ids ? { account_ids: c.account_ids.map(String) } : {}),
  }));
  const dataExtensions = new Map<string, DataExtensionDefinition>();
  for (const de of opts.data_extensions ?? DEFAULT_DATA_EXTENSIONS) dataExtensions.set(de.key, de);
  return {
    clients,
    tenants: new Set(clients.map((c) => c.tenant)),
    defaultTenant: opts.default_tenant?.toLowerCase() ?? null,
    enforceHostKind: opts.enforce_host_kind ?? true,
    expiresIn: opts.expires_in ?? 1079,
    eventKeys: new Set(opts.event_definition_keys ?? DEFAULT_EVENT_DEFINITION_KEYS),
    dataExtensions,
    asyncProcessingMs: Math.max(0, opts.async_processing_ms ?? 0),
    tokens: new Map(),
    tokensSinceSweep: 0,
    requests: [],
    events: [],
    rows: [],
    batchRequests: new Map(),
    deRequests: new Map(),
    tables: new Map(),
    tableSeq: 0,
    stats: emptyStats(),
    pendingTimers: new Map(),
    closed: false,
    faults: {},
    rng: mulberry32(1),
    faultTargets: new Set(),
  };
}

export function restError(message: string, errorcode: number): { message: string; errorcode: number; documentation: string } {
  return { message, errorcode, documentation: ERROR_DOC_URL };
}

export function json(status: number, body: unknown, headers?: Record<string, string>): HandlerResult {
  return headers ? { status, body, headers } : { status, body };
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function nonEmptyKey(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') return null;
  return value.trim() === '' ? null : value;
}

export function emptyStats(): EmulatorStats {
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

export function sleep(s: EmulatorState, ms: number): Promise<void> {
  if (s.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.pendingTimers.delete(timer);
      resolve();
    }, ms);
    s.pendingTimers.set(timer, resolve);
  });
}

export function later(s: EmulatorState, ms: number, fn: () => void): void {
  const timer = setTimeout(() => {
    s.pendingTimers.delete(timer);
    fn();
  }, ms);
  s.pendingTimers.set(timer, () => undefined);
}

// JSON body helpers for the REST endpoints -----------------------------------------------------------
export function restJsonBody(ctx: Ctx): { ok: true; value: unknown } | { ok: false; result: HandlerResult } {
  const ct = firstHeader(ctx.req.headers['content-type']);
  if (ct && !ct.toLowerCase().includes('json')) {
    return { ok: false, result: json(415, restError(`Unsupported Media Type '${ct}'. Use application/json.`, 415)) };
  }
  const parsed = tryParseJson(ctx.bodyText);
  if (!parsed.ok) return { ok: false, result: json(400, restError('The request body is not valid JSON.', 10000)) };
  return parsed;
}
