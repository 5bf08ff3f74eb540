/**
 * What the fleet commands (enqueue, worker, status, dead-letters, replay) share: checking the `--redis` URL
 * they require (the option itself: redisOption({ required: true }) in cli/store.ts), connecting the queue
 * with a clear error, and the integration's queue name.
 */
import { openStore, REDIS_ENV } from './store.js';
import type { DeliveryQueue, EngineOptions } from '../engine/index.js';
import { createRedisQueue, displayRedisUrl, SignalError } from '../engine/index.js';
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

/** Connect the queue; an unreachable Redis ends the command with exit 1 and the URL (password hidden). */
export async function connectQueue(url: string | undefined, opts: { visibilityTimeoutMs?: number; persistent?: boolean } = {}): Promise<DeliveryQueue> {
  try {
    return await createRedisQueue({ url: checkRedisUrl(url), ...opts });
  } catch (e) {
    if (e instanceof CliError) throw e;
    if (e instanceof SignalError) throw new CliError(e.message, EXIT.failed);
    throw e;
  }
}

/** The queue name of a record file: its `name` (one queue per integration record). */
export async function recordName(io: CliIO, file: string): Promise<string> {
  const record = await readJsonFile(io, file, 'integration record');
  const name = (record as { name?: unknown } | null)?.name;
  if (typeof name !== 'string' || name === '') throw new CliError(`integration record '${file}' has no name (the queue is named after it)`);
  return name;
}

/**
 * Engine options for fleet processes: shared state (token cache, rate limits) through the same Redis as
 * the queues, so the whole fleet holds one token per credential key and one rate limit per scope.
 */
export async function fleetStore(url: string): Promise<{ options: Partial<EngineOptions>; close: () => Promise<void> }> {
  const store = await openStore(url);
  return { options: store ? { store } : {}, close: async () => void (await store?.close()) };
}
