/**
 * `--redis URL` (env SIGNAL_REDIS_URL), one definition for every command that talks to Redis, and the
 * shared store it opens (engine/store/redis.ts): tokens and rate limits shared with every other process
 * using the same Redis. Without it, `deliver` keeps state in this process; the fleet commands (cli/fleet.ts)
 * cannot run without it.
 */
import { Option } from 'commander';
import { createRedisStore, type RedisStore } from '../engine/index.js';

export const REDIS_ENV = 'SIGNAL_REDIS_URL';

/**
 * The `--redis <url>` option. `required: false` (deliver): shared state, optional. `required: true` (the
 * fleet commands): the queues live there; the flag stays optional for commander so that checkRedisUrl
 * (cli/fleet.ts) reports a missing or malformed URL with the env variable and an example.
 */
export function redisOption(opts: { required: boolean }): Option {
  const help = opts.required
    ? 'Redis holding the queues (and, for worker, the tokens and rate limits the fleet shares), e.g. redis://127.0.0.1:6379 (required)'
    : 'share tokens and rate limits with other processes through this Redis (redis://host:port); tokens are sealed when SIGNAL_STORE_KEY is set';
  return new Option('--redis <url>', help).env(REDIS_ENV);
}

/** The Redis store for `--redis`, or undefined (in memory). Throws a SignalError (exit 2) naming host:port when Redis is unreachable. */
export async function openStore(url: string | undefined): Promise<RedisStore | undefined> {
  if (!url) return undefined;
  return createRedisStore({ url });
}
