/** Constants of the Marketing Cloud emulator: limits, default clients, and error bodies copied from the API notes. */
import type { DataExtensionDefinition, EmulatorClient } from './types.js';

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
export const MAX_STORED_BODY = 8 * 1024 * 1024;
export const MAX_PAGE_SIZE = 2500;
