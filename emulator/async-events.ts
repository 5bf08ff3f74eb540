/** POST /interaction/v1/async/events and GET .../status (rest host): batched journey entry, ≤ 100 members. */
import { randomUUID } from 'node:crypto';
import { intParam, isPlainObject, prop } from './http-util.js';
import { CONTACT_KEY_REQUIRED_MESSAGE, MAX_BATCH_MEMBERS, MAX_PAGE_SIZE } from './constants.js';
import {
  json,
  nonEmptyKey,
  restError,
  restJsonBody,
  type BatchRequest,
  type Ctx,
  type EmulatorState,
  type HandlerResult,
} from './state.js';
import { authorizeScope } from './token.js';

export function handleBatch(s: EmulatorState, ctx: Ctx): HandlerResult {
  const auth = authorizeScope(s, ctx, 'journeys_execute');
  if ('status' in auth) return auth;
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
  if (!s.eventKeys.has(edk)) {
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
    s.events.push({
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
    s.stats.events_recorded++;
  }
  s.batchRequests.set(requestId, { requestId, tenant: auth.tenant, at: now, members: out });
  const notQueued = out.filter((m) => m.status === 'NotQueued').length;
  return json(202, { requestId, count: out.length, notQueuedCount: notQueued, members: out });
}

export function handleBatchStatus(s: EmulatorState, ctx: Ctx): HandlerResult {
  const auth = authorizeScope(s, ctx, 'journeys_read');
  if ('status' in auth) return auth;
  const requestId = ctx.url.searchParams.get('requestId');
  if (!requestId) return json(400, restError('requestId is required.', 10002));
  const type = ctx.url.searchParams.get('type');
  if (type !== null && !['errored', 'queued', 'processed'].includes(type)) {
    return json(400, restError("type must be one of 'errored', 'queued', 'processed'.", 10000));
  }
  const batch = s.batchRequests.get(requestId);
  if (!batch || batch.tenant !== auth.tenant) {
    return json(404, restError(`Request '${requestId}' was not found.`, 10000));
  }
  const processed = Date.now() - batch.at >= s.asyncProcessingMs;
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
}
