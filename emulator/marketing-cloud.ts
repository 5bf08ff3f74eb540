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
 * Response shapes follow Marketing Cloud's documented REST answers (token, Interaction API, async Data
 * Extension API). The tenant is taken from the first DNS label of
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
// The public entry: one file per API lives beside it (token.ts, journey-events.ts, async-events.ts,
// data-extensions.ts), with faults.ts, routes.ts, server.ts and state.ts as the shared plumbing.
export { startMarketingCloudEmulator } from './server.js';
export { formatReceived } from './format.js';
export type { FormatReceivedOptions } from './format.js';
export type {
  DataExtensionDefinition,
  Emulator,
  EmulatorClient,
  EmulatorOptions,
  EmulatorStats,
  FaultOptions,
  FaultRates,
  FaultTarget,
  RecordedEvent,
  RecordedRequest,
  RecordedRow,
} from './types.js';
export {
  CONTACT_KEY_REQUIRED_MESSAGE,
  DEFAULT_CLIENT,
  DEFAULT_DATA_EXTENSIONS,
  DEFAULT_EVENT_DEFINITION_KEYS,
  DEFAULT_SCOPES,
  ERROR_DOC_URL,
  INVALID_CLIENT_BODY,
  INVALID_GRANT_MID_BODY,
  MAX_BATCH_MEMBERS,
  MAX_DE_BODY_BYTES,
  MAX_DE_ROWS,
  NOT_AUTHORIZED_BODY,
  RATE_LIMIT_DOC_URL,
} from './constants.js';
