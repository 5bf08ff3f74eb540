/** POST /interaction/v1/events (rest host): single Journey Builder entry event. */
import { randomUUID } from 'node:crypto';
import { isPlainObject, prop } from './http-util.js';
import { CONTACT_KEY_REQUIRED_MESSAGE } from './constants.js';
import { json, nonEmptyKey, restError, restJsonBody, type Ctx, type EmulatorState, type HandlerResult } from './state.js';
import { authorizeScope } from './token.js';

export function handleEvent(s: EmulatorState, ctx: Ctx): HandlerResult {
  const auth = authorizeScope(s, ctx, 'journeys_execute');
  if ('status' in auth) return auth;
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
  if (!s.eventKeys.has(edk)) {
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
  s.events.push({
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
  s.stats.events_recorded++;
  return json(201, { eventInstanceId });
}
