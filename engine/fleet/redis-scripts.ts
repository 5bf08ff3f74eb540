/**
 * The queue's Lua scripts and key names (key layout and guarantees: redis-queue.ts). Each script is one
 * state change that must not be half-done; RedisQueue registers them with ioredis's defineCommand. Kept
 * apart from the queue's operations so that what runs inside Redis reads in one place.
 */
import type { Redis } from 'ioredis';

export const GROUP = 'workers';

/** Millisecond clock of the Redis server, so that every worker agrees on when a retry is due. */
const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Does ARGV[consumerArg] hold entry ARGV[idArg]? */
const holds = (idArg: number, consumerArg: number) =>
  `#redis.call('XPENDING', KEYS[1], '${GROUP}', ARGV[${idArg}], ARGV[${idArg}], 1, ARGV[${consumerArg}]) == 1`;

export const SCRIPTS = {
  // KEYS: stream delayed dead deaddata stats outcomes
  // ARGV: id consumer kind outcome payload delay_ms job_id status outcomes_maxlen
  signalQueueSettle: {
    numberOfKeys: 6,
    lua: `
if not (${holds(1, 2)}) then return 0 end
redis.call('XACK', KEYS[1], '${GROUP}', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
${NOW_MS}
local kind = ARGV[3]
if kind == 'retry' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'retried', 1)
elseif kind == 'dead' then
  -- Two messages may carry one job_id (a producer other than enqueue): a dead letter never replaces
  -- another; the later one is kept beside it as <job_id>#<n>.
  local member, n = ARGV[7], 1
  while redis.call('HEXISTS', KEYS[4], member) == 1 do
    member = ARGV[7] .. '#' .. n
    n = n + 1
  end
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('HSET', KEYS[4], member, ARGV[5])
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'dead_lettered_total', 1)
else
  redis.call('HINCRBY', KEYS[5], ARGV[8], 1)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[9], '*', 'o', ARGV[4])
return 1`,
  },
  // KEYS: stream; ARGV: id consumer payload — hand back without an attempt.
  signalQueueRelease: {
    numberOfKeys: 1,
    lua: `
if not (${holds(1, 2)}) then return 0 end
redis.call('XACK', KEYS[1], '${GROUP}', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[1], '*', 'm', ARGV[3])
return 1`,
  },
  // KEYS: stream delayed; ARGV: limit — due retries back onto the queue.
  signalQueuePromote: {
    numberOfKeys: 2,
    lua: `
${NOW_MS}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'm', m)
  redis.call('ZREM', KEYS[2], m)
end
return #due`,
  },
  // KEYS: stream; ARGV: consumer id... — reset the idle time of the leases this consumer still holds.
  signalQueueRenew: {
    numberOfKeys: 1,
    lua: `
local lost = {}
for i = 2, #ARGV do
  if #redis.call('XPENDING', KEYS[1], '${GROUP}', ARGV[i], ARGV[i], 1, ARGV[1]) == 1 then
    redis.call('XCLAIM', KEYS[1], '${GROUP}', ARGV[1], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost`,
  },
  // KEYS: stream dead deaddata stats; ARGV: dead-letter member (the job_id, or <job_id>#<n>) payload — one dead letter back onto the queue.
  signalQueueReplay: {
    numberOfKeys: 4,
    lua: `
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
redis.call('HINCRBY', KEYS[4], 'replayed', 1)
return 1`,
  },
} as const;

export type Scripted = Redis & {
  signalQueueSettle(...args: (string | number)[]): Promise<number>;
  signalQueueRelease(...args: (string | number)[]): Promise<number>;
  signalQueuePromote(...args: (string | number)[]): Promise<number>;
  signalQueueRenew(...args: (string | number)[]): Promise<string[]>;
  signalQueueReplay(...args: (string | number)[]): Promise<number>;
};

export function keys(prefix: string, name: string) {
  const base = `${prefix}{${name}}:`;
  return {
    stream: `${base}stream`,
    delayed: `${base}delayed`,
    dead: `${base}dead`,
    deadData: `${base}dead:data`,
    stats: `${base}stats`,
    outcomes: `${base}outcomes`,
  };
}
