/** Maps method + path to the API handler (and the fault category and service host it belongs to). */
import { json, restError, type HandlerResult, type RouteMatch } from './state.js';
import { handleToken } from './token.js';
import { handleEvent } from './journey-events.js';
import { handleBatch, handleBatchStatus } from './async-events.js';
import { handleDeResults, handleDeStatus, handleRowsInsert, handleRowsUpsert } from './data-extensions.js';

export function matchRoute(method: string, path: string): RouteMatch | HandlerResult {
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
      if (method === 'POST') return { category: 'rows', service: 'rest', handler: handleRowsInsert, params };
      if (method === 'PUT') return { category: 'rows', service: 'rest', handler: handleRowsUpsert, params };
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