/**
 * `--redis URL` (env SIGNAL_REDIS_URL): share tokens and rate limits with every other process using the
 * same Redis (engine/store/redis.ts). Without it, state stays in this process. For any command that
 * delivers (`deliver`, `worker`).
 */
import { Option } from 'commander';
import { createRedisStore, type RedisStore } from '../engine/index.js';

export function redisOption(): Option {
  return new Option('--redis <url>', 'share tokens and rate limits with other processes through this Redis (redis://host:port); tokens are sealed when SIGNAL_STORE_KEY is set').env('SIGNAL_REDIS_URL');
}

/** The Redis store for `--redis`, or undefined (in memory). Throws a SignalError (exit 2) naming host:port when Redis is unreachable. */
export async function openStore(url: string | undefined): Promise<RedisStore | undefined> {
  if (!url) return undefined;
  return createRedisStore({ url });
}
