/**
 * What the fleet commands (enqueue, worker, status, dead-letters, replay) share: checking the `--redis` URL
 * they require (the option itself: redisOption({ required: true }) in cli/store.ts), connecting the queue
 * with a clear error, and the record a command acts for — known by its stable `id`, never by its name.
 */
import { openStore, REDIS_ENV } from './store.js';
import type { DeliveryQueue, EngineOptions, QueueRecord } from '../engine/index.js';
import { createRedisQueue, displayRedisUrl, SignalError, type Engine } from '../engine/index.js';
import { CliError, EXIT, readJsonFile, type CliIO } from './io.js';

export { REDIS_ENV } from './store.js';

/** The fleet's `--redis` URL, or a usage error (exit 2) saying what is missing or malformed. */
export function checkRedisUrl(url: string | undefined): string {
  if (url === undefined || url === '') throw new CliError(`--redis URL is required (or set ${REDIS_ENV}), e.g. --redis redis://127.0.0.1:6379`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CliError(`--redis '${displayRedisUrl(url)}' is not a URL (expected e.g. redis://127.0.0.1:6379)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new CliError(`--redis '${displayRedisUrl(url)}' must be a redis:// or rediss:// URL`);
  return url;
}

/** Connect the queue; an unreachable Redis ends the command with exit 2 (as for every fleet command) and the URL (password hidden). */
export async function connectQueue(url: string | undefined, opts: { prefix?: string; visibilityTimeoutMs?: number; persistent?: boolean } = {}): Promise<DeliveryQueue> {
  try {
    return await createRedisQueue({ url: checkRedisUrl(url), ...opts });
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

/** The `id` of a record read from `file`, or a usage error (exit 2) saying what to add. */
export function requireRecordId(record: unknown, file: string): string {
  const r = record as { id?: unknown; name?: unknown } | null;
  const id = r?.id;
  if (typeof id === 'string' && id !== '') return id;
  const label = typeof r?.name === 'string' ? ` ('${r.name}')` : '';
  throw new CliError(
    `integration record '${file}'${label} has no id: fleet commands key queues, dead letters and counts by the record's stable id, not its name — add "id": "<the id the Management API assigned>" to the record`,
  );
}

/** A record file's id (status, dead-letters: no engine needed). */
export async function recordId(io: CliIO, file: string): Promise<string> {
  return requireRecordId(await readJsonFile(io, file, 'integration record'), file);
}

/**
 * A record file checked against its spec (the same errors as `deliver`), as the queue knows it: id,
 * credential scope (stamped on every message) and display name.
 */
export async function queueRecord(io: CliIO, file: string, engine: Engine): Promise<QueueRecord> {
  const record = await readJsonFile(io, file, 'integration record');
  const id = requireRecordId(record, file);
  const integration = engine.createIntegration(record);
  return { id, scope: integration.credentialScope, name: integration.name };
}

/**
 * Engine options for fleet processes: shared state (token cache, rate limits) through the same Redis as
 * the queues, under the same key prefix, so the whole fleet of one customer holds one token per credential
 * key and one rate limit per scope.
 */
export async function fleetStore(url: string, keyPrefix?: string): Promise<{ options: Partial<EngineOptions>; close: () => Promise<void> }> {
  const store = await openStore(url, keyPrefix);
  return { options: store ? { store } : {}, close: async () => void (await store?.close()) };
}
