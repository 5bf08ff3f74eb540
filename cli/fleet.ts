/**
 * What the fleet commands (enqueue, worker, status, dead-letters, replay) share: checking the `--redis` URL
 * they require (the option itself: redisOption({ required: true }) in cli/store.ts), connecting the queue
 * with a clear error, and the record a command acts for — known by its stable `id`, never by its name.
 */
import { openStore, REDIS_ENV } from './store.js';
import type { DeliveryQueue, EngineOptions, IntegrationRecord, QueueRecord } from '../engine/index.js';
import { createRedisQueue, DEFAULT_COMMAND_TIMEOUT_MS, displayRedisUrl, SignalError, type Engine } from '../engine/index.js';
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

/**
 * A Redis failure met by a fleet command after it connected (Redis frozen: no answer within the queue's
 * command timeout; gone; refusing), as the one-line error and exit 2 every fleet command gives for "cannot
 * reach Redis"; undefined for any other error. Never the password (the URL is masked).
 */
export function redisFailure(e: unknown, url: string): CliError | undefined {
  if (e instanceof SignalError || !(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  const where = displayRedisUrl(url);
  if (e.message === 'Command timed out') return new CliError(`Redis at ${where} stopped answering (no answer within ${DEFAULT_COMMAND_TIMEOUT_MS / 1000} s; frozen or overloaded?)`);
  if (e.name === 'ReplyError') return new CliError(`Redis at ${where} refused a command: ${e.message.split('\n')[0]}`);
  if (e.name === 'MaxRetriesPerRequestError' || e.message === 'Connection is closed.' || (typeof code === 'string' && /^E[A-Z]+$/.test(code))) {
    return new CliError(`lost the connection to Redis at ${where}: ${e.message.split('\n')[0]}`);
  }
  return undefined;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Before a worker connects for good: while Redis accepts connections but does not answer (frozen,
 * overloaded), say so in the log and keep trying, instead of hanging silently. A Redis that cannot be
 * reached at all still ends the worker (exit 2, as for every fleet command). Resolves false when `signal`
 * aborted the wait (the worker was stopped before Redis answered).
 */
export async function waitForRedis(
  url: string,
  opts: { prefix?: string; probeMs?: number; retryMs?: number; signal?: AbortSignal; log: { warn(obj: object, msg?: string): void } },
): Promise<boolean> {
  const started = Date.now();
  let logged = -Infinity;
  while (!opts.signal?.aborted) {
    try {
      const probe = await createRedisQueue({ url, ...(opts.prefix !== undefined ? { prefix: opts.prefix } : {}), commandTimeoutMs: opts.probeMs ?? 3_000 });
      await probe.close();
      return true;
    } catch (e) {
      if (!(e instanceof SignalError) || e.code !== 'queue.timeout') {
        if (e instanceof SignalError && !(e instanceof CliError)) throw new CliError(e.message, EXIT.usage);
        throw e;
      }
    }
    // The first time at once, then every 30 s: the wait may last as long as the freeze.
    if (Date.now() - logged >= 30_000) {
      logged = Date.now();
      opts.log.warn({ redis: displayRedisUrl(url), waited_s: Math.round((Date.now() - started) / 1000) }, 'Redis accepts connections but does not answer: waiting for it (nothing is consumed meanwhile)');
    }
    await sleep(opts.retryMs ?? 1_000, opts.signal);
  }
  return false;
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
  const integration = engine.createIntegration(record as IntegrationRecord);
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
