/**
 * `--redis URL` (env SIGNAL_REDIS_URL), one definition for every command that talks to Redis, and the
 * shared store it opens (engine/store/redis.ts): tokens and rate limits shared with every other process
 * using the same Redis. Without it, `deliver` keeps state in this process; the fleet commands (cli/fleet.ts)
 * cannot run without it.
 */
import { InvalidArgumentError, Option } from 'commander';
import { createRedisStore, DEFAULT_KEY_PREFIX, keyPrefixProblem, type RedisStore } from '../engine/index.js';

export const REDIS_ENV = 'SIGNAL_REDIS_URL';
export const PREFIX_ENV = 'SIGNAL_REDIS_PREFIX';

/** `--key-prefix` (env SIGNAL_REDIS_PREFIX): the customer's keyspace; every key of the command lives under it. */
export function keyPrefixOption(): Option {
  return new Option('--key-prefix <prefix>', "every Redis key under this prefix: one keyspace per customer, so customers sharing a Redis never see each other's queues, tokens or counts")
    .env(PREFIX_ENV)
    .default(DEFAULT_KEY_PREFIX)
    .argParser((v: string) => {
      const bad = keyPrefixProblem(v);
      if (bad) throw new InvalidArgumentError(bad);
      return v;
    });
}

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
export async function openStore(url: string | undefined, keyPrefix: string = DEFAULT_KEY_PREFIX): Promise<RedisStore | undefined> {
  if (!url) return undefined;
  return createRedisStore({ url, keyPrefix });
}
