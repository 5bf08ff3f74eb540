/** Async data extension rows (insert / upsert) and their request status and results (rest host). */
import { randomUUID } from 'node:crypto';
import { intParam, isPlainObject, prop } from './http-util.js';
import { MAX_DE_BODY_BYTES, MAX_DE_ROWS, MAX_PAGE_SIZE } from './constants.js';
import {
  iso,
  json,
  later,
  restJsonBody,
  type Ctx,
  type DeRequest,
  type EmulatorState,
  type HandlerResult,
  type RouteHandler,
  type TokenInfo,
} from './state.js';
import { authorizeScope } from './token.js';
import type { DataExtensionDefinition } from './types.js';

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

function processDeRequest(s: EmulatorState, r: DeRequest): void {
  const def = s.dataExtensions.get(r.key);
  if (!def) return;
  const now = Date.now();
  r.pickupAt = now;
  const tableKey = `${r.tenant}|${r.key}`;
  let table = s.tables.get(tableKey);
  if (!table) {
    table = new Map();
    s.tables.set(tableKey, table);
  }
  const pk = def.primary_key ?? [];
  r.items.forEach((item, rowIndex) => {
    const invalid = validateRow(def, item);
    if (invalid || !isPlainObject(item)) {
      const e = invalid ?? { errorCode: 'InvalidRow', message: 'Invalid row.' };
      r.errors.push({ ...e, status: 'Error', rowIndex, values: item });
      s.stats.row_errors++;
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
        s.stats.row_errors++;
        return;
      }
    } else {
      rowKey = `#${++s.tableSeq}`;
    }
    table.set(rowKey, item);
    s.rows.push({
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
    s.stats.rows_recorded++;
  });
  r.completeAt = Date.now();
}

function deValidationError(requestId: string, resultCode: string, message: string): HandlerResult {
  return json(400, {
    requestId,
    resultMessages: [{ resultType: 'Validation', resultClass: 'Error', resultCode, message }],
  });
}

const handleRows = (op: 'insert' | 'upsert'): RouteHandler => (s, ctx) => {
  const auth = authorizeScope(s, ctx, 'data_extensions_write');
  if ('status' in auth) return auth;
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
  const def = s.dataExtensions.get(key);
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
  s.deRequests.set(requestId, r);
  if (s.asyncProcessingMs === 0) processDeRequest(s, r);
  else
    later(s, s.asyncProcessingMs, () => {
      try {
        processDeRequest(s, r);
      } catch (err) {
        // Never crash the process from a timer: mark the request failed instead.
        s.stats.internal_errors++;
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

export const handleRowsInsert = handleRows('insert');
export const handleRowsUpsert = handleRows('upsert');

function findDeRequest(s: EmulatorState, ctx: Ctx, auth: TokenInfo): DeRequest | HandlerResult {
  const requestId = ctx.params['requestId'] ?? '';
  const r = s.deRequests.get(requestId);
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

export function handleDeStatus(s: EmulatorState, ctx: Ctx): HandlerResult {
  const auth = authorizeScope(s, ctx, 'data_extensions_read');
  if ('status' in auth) return auth;
  const r = findDeRequest(s, ctx, auth);
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
}

export function handleDeResults(s: EmulatorState, ctx: Ctx): HandlerResult {
  const auth = authorizeScope(s, ctx, 'data_extensions_read');
  if ('status' in auth) return auth;
  const r = findDeRequest(s, ctx, auth);
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
}
