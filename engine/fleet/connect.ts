/**
 * One way for the fleet's parts (queue, registry, trace store, tap) to open a Redis connection: a clear
 * SignalError naming the URL (credentials masked) when Redis cannot be reached, and a deadline when it
 * accepts the connection but never answers (frozen, SIGSTOP). `persistent` (a worker, a tap): commands wait
 * while Redis is away and reconnects go on; otherwise (a CLI command) each command fails after
 * `commandTimeoutMs` and connecting gives up after a few tries.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { SignalError } from '../errors.js';
import { displayRedisUrl } from '../policy/redis-url.js';

/** Default command timeout of a connection that is not persistent. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

/** ioredis's message for a command that got no answer within `commandTimeout`. */
export const TIMED_OUT = 'Command timed out';

export interface ConnectOptions {
  persistent?: boolean;
  /** Default: DEFAULT_COMMAND_TIMEOUT_MS unless persistent (then none). */
  commandTimeoutMs?: number;
}

export function connectionOptions(opts: ConnectOptions): RedisOptions {
  const commandTimeout = opts.commandTimeoutMs ?? (opts.persistent ? undefined : DEFAULT_COMMAND_TIMEOUT_MS);
  return {
    lazyConnect: true,
    connectTimeout: 5_000,
    // Commands issued in one turn of the event loop (the settles of a burst of answers) go out in one write:
    // fewer round trips, and far less work for Redis per event than a read and a write per command.
    enableAutoPipelining: true,
    ...(commandTimeout !== undefined ? { commandTimeout } : {}),
    ...(opts.persistent
      ? { maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(n * 200, 2_000) }
      : { maxRetriesPerRequest: 1, retryStrategy: (n: number) => (n > 2 ? null : 200) }),
  };
}

/** Connect, or throw a SignalError (`queue.unreachable`, `queue.timeout`) that says why, URL masked. */
export async function connectRedis(url: string, opts: ConnectOptions = {}): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const options = connectionOptions(opts);
  const redis = new Redis(url, options);
  let lastError: Error | undefined;
  redis.on('error', (e: Error) => (lastError = e)); // reported through the failing commands, not as unhandled events
  // A Redis that accepts the connection but never answers would hold connect() forever: it gets the connect
  // timeout plus the command timeout, once per connection try.
  const limit = options.commandTimeout !== undefined ? 3 * ((options.connectTimeout ?? 0) + options.commandTimeout) : undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await (limit === undefined
      ? redis.connect()
      : Promise.race([redis.connect(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(TIMED_OUT)), limit)))]));
  } catch (e) {
    redis.disconnect();
    const why = (lastError ?? (e as Error)).message;
    if (why === TIMED_OUT) throw new SignalError('queue.timeout', `Redis at ${displayRedisUrl(url)} did not answer within ${Math.round(options.commandTimeout! / 1000)} s (frozen or overloaded?)`);
    throw new SignalError('queue.unreachable', `cannot reach Redis at ${displayRedisUrl(url)}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
  return redis;
}
