/**
 * The queue's Lua scripts and key names (key layout and guarantees: redis-queue.ts). Each script is one
 * state change that must not be half-done; RedisQueue registers them with ioredis's defineCommand. Kept
 * apart from the queue's operations so that what runs inside Redis reads in one place.
 */
import type { ChainableCommander, Redis } from 'ioredis';

export const GROUP = 'workers';

/** Millisecond clock of the Redis server, so that every worker agrees on when a retry is due. */
const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** Does ARGV[consumerArg] hold entry ARGV[idArg]? */
const holds = (idArg: number, consumerArg: number) => holdsId(`ARGV[${idArg}]`, `ARGV[${consumerArg}]`);
function holdsId(id: string, consumer = 'ARGV[1]'): string {
  return `#redis.call('XPENDING', KEYS[1], '${GROUP}', ${id}, ${id}, 1, ${consumer}) == 1`;
}

export const SCRIPTS = {
  // KEYS: stream delayed; ARGV: consumer max vt_ms claim_cursor promote_limit — one visit of an integration:
  // due retries back onto the stream, leases of dead consumers taken over, new entries read (at most `max`
  // in all), and what is left, so the caller can schedule the next visit. Returns
  // { claimed entries, next claim cursor, new entries, waiting, pending, next delayed due ('' if none), now }.
  signalQueueTake: {
    numberOfKeys: 2,
    lua: `
${NOW_MS}
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'm', m)
  redis.call('ZREM', KEYS[2], m)
end
local max = tonumber(ARGV[2])
local claimed = {}
local cursor = ARGV[4]
if max > 0 and tonumber(redis.call('XPENDING', KEYS[1], '${GROUP}')[1]) > 0 then
  local r = redis.call('XAUTOCLAIM', KEYS[1], '${GROUP}', ARGV[1], tonumber(ARGV[3]), cursor, 'COUNT', max)
  cursor = r[1]
  claimed = r[2]
  max = max - #claimed
end
local fresh = {}
if max > 0 then
  local r = redis.call('XREADGROUP', 'GROUP', '${GROUP}', ARGV[1], 'COUNT', max, 'STREAMS', KEYS[1], '>')
  if r then fresh = r[1][2] end
end
local pending = tonumber(redis.call('XPENDING', KEYS[1], '${GROUP}')[1])
local waiting = redis.call('XLEN', KEYS[1]) - pending
local nd = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {claimed, cursor, fresh, waiting, pending, nd[2] or '', now}`,
  },
  // KEYS: lease; ARGV: holder ttl_ms — take a short lease, or keep it when this holder has it; 1 when held.
  signalLease: {
    numberOfKeys: 1,
    lua: `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2])) return 1 end
return 0`,
  },
  // KEYS: active; ARGV: id delay_ms — the integration has work due in delay_ms (only ever moves a due time earlier).
  signalActiveDue: {
    numberOfKeys: 1,
    lua: `
${NOW_MS}
redis.call('ZADD', KEYS[1], 'LT', now + tonumber(ARGV[2]), ARGV[1])
return 1`,
  },
  // KEYS: active; ARGV: id at_ms — as signalActiveDue, at an absolute time on the Redis clock.
  signalActiveAt: {
    numberOfKeys: 1,
    lua: `redis.call('ZADD', KEYS[1], 'LT', ARGV[2], ARGV[1]) return 1`,
  },
  // KEYS: active; ARGV: id hold_ms nonce_ms — a visitor holds a due integration (not due for others) for
  // about hold_ms; returns the score as Redis prints it (the nonce makes it this visit's own), '' when it is
  // not due (another visitor holds it, or it was dropped): then there is nothing to visit.
  signalActiveHold: {
    numberOfKeys: 1,
    lua: `
${NOW_MS}
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) > now then return '' end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return redis.call('ZSCORE', KEYS[1], ARGV[1])`,
  },
  // KEYS: active; ARGV: id hold_score [at_ms] — after a held visit: next visit at at_ms, or forget an
  // integration found empty (no at_ms); only if no work moved its score since the hold (else keep that).
  signalActiveDrop: {
    numberOfKeys: 1,
    lua: `
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or s ~= ARGV[2] then return 0 end
if ARGV[3] then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) else redis.call('ZREM', KEYS[1], ARGV[1]) end
return 1`,
  },
  // KEYS: active; ARGV: offset limit — integrations due now (oldest due first), and the next due time after them.
  signalActiveReady: {
    numberOfKeys: 1,
    lua: `
${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', tonumber(ARGV[1]), tonumber(ARGV[2]))
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
return {ids, nxt[2] or '', now}`,
  },
  // KEYS: stream delayed dead deaddata stats outcomes
  // ARGV: id consumer kind outcome payload delay_ms job_id outcomes_maxlen check_empty — a failed attempt:
  // retried later (kind retry) or dead-lettered (kind dead). Delivered and skipped events: signalQueueSettleDone.
  signalQueueSettle: {
    numberOfKeys: 6,
    lua: `
if not (${holds(1, 2)}) then return 0 end
redis.call('XACK', KEYS[1], '${GROUP}', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
local kind = ARGV[3]
if kind == 'retry' then
  ${NOW_MS}
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'retried', 1)
else -- dead
  -- Two messages may carry one job_id (a producer other than enqueue): a dead letter never replaces
  -- another; the later one is kept beside it as <job_id>#<n>.
  local member, n = ARGV[7], 1
  while redis.call('HEXISTS', KEYS[4], member) == 1 do
    member = ARGV[7] .. '#' .. n
    n = n + 1
  end
  ${NOW_MS}
  redis.call('ZADD', KEYS[3], now, member)
  redis.call('HSET', KEYS[4], member, ARGV[5])
  redis.call('HINCRBY', KEYS[5], 'failed', 1)
  redis.call('HINCRBY', KEYS[5], 'dead_lettered_total', 1)
end
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', 'o', ARGV[4])
-- Asked (ARGV[9]): 2 when the integration has nothing left at all (no entry, no retry), so the caller may drop it from \`active\`.
if ARGV[9] == '1' and redis.call('XLEN', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0 then return 2 end
return 1`,
  },
  // KEYS: stream delayed stats outcomes; ARGV: consumer outcomes_maxlen check_empty min_id max_id, then
  // (id status outcome) per event — settle several delivered/skipped events at once: those the consumer
  // still holds are acknowledged, deleted, counted and their outcomes recorded. Returns 1/0 per event (held
  // or not), then 1 when asked (check_empty) and the integration has nothing left at all.
  signalQueueSettleDone: {
    numberOfKeys: 4,
    lua: `
-- One range read of this consumer's leases between the batch's ids; had the read been cut at its limit
-- (many other leases in between), an id not seen in it is asked about alone.
local limit = (#ARGV - 5) / 3 * 4 + 64
local range = redis.call('XPENDING', KEYS[1], '${GROUP}', ARGV[4], ARGV[5], limit, ARGV[1])
local held = {}
for _, e in ipairs(range) do held[e[1]] = true end
local cut = #range >= limit
local res, acks, counts, settled = {}, {}, {}, {}
for i = 6, #ARGV, 3 do
  if not settled[ARGV[i]] and (held[ARGV[i]] or (cut and ${holdsId('ARGV[i]')})) then
    settled[ARGV[i]] = true -- named twice in one batch: settled once, as one call after another would
    acks[#acks + 1] = ARGV[i]
    counts[ARGV[i + 1]] = (counts[ARGV[i + 1]] or 0) + 1
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*', 'o', ARGV[i + 2])
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
end
if #acks > 0 then
  redis.call('XACK', KEYS[1], '${GROUP}', unpack(acks))
  redis.call('XDEL', KEYS[1], unpack(acks))
  for status, n in pairs(counts) do redis.call('HINCRBY', KEYS[3], status, n) end
end
res[#res + 1] = (ARGV[3] == '1' and redis.call('XLEN', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0) and 1 or 0
return res`,
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
  signalQueueTake(...args: (string | number)[]): Promise<[Entry[], string, Entry[], number, number, string, number]>;
  signalActiveDue(...args: (string | number)[]): Promise<number>;
  signalLease(...args: (string | number)[]): Promise<number>;
  signalActiveAt(...args: (string | number)[]): Promise<number>;
  signalActiveHold(...args: (string | number)[]): Promise<string>;
  signalActiveDrop(...args: (string | number)[]): Promise<number>;
  signalActiveReady(...args: (string | number)[]): Promise<[string[], string, number]>;
  signalQueueSettle(...args: (string | number)[]): Promise<number>;
  signalQueueSettleDone(...args: (string | number)[]): Promise<number[]>;
  signalQueueRelease(...args: (string | number)[]): Promise<number>;
  signalQueueRenew(...args: (string | number)[]): Promise<string[]>;
  signalQueueReplay(...args: (string | number)[]): Promise<number>;
};

export type Entry = [id: string, fields: string[] | null];

export const DEFAULT_KEY_PREFIX = 'signal:';

/** A key prefix (a customer's keyspace) that cannot break hash tags or collide by accident; else the problem. */
export function keyPrefixProblem(prefix: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/.test(prefix)) return `key prefix '${prefix.replace(/[^\x20-\x7e]/g, '?')}' must be 1-64 characters of letters, digits and . _ : / - (no braces: keys keep their {id} hash tag), starting with a letter or digit`;
  return undefined;
}

/** A record id as a key part: what the record schema allows (no braces, no spaces); else a TypeError. */
export function checkIntegrationId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw new TypeError(`integration id '${id.replace(/[^\x20-\x7e]/g, '?')}' is not a valid id (1-128 of letters, digits and . _ : -)`);
  return id;
}

/** Keys of the whole keyspace (not of one integration). */
export function globalKeys(prefix: string) {
  return {
    /** ZSET id → when the integration next needs a visit (work waiting, a retry due, leases to check). */
    active: `${prefix}active`,
    /** Pub/sub channel: new work somewhere (workers wake up and look at `active`). */
    wake: `${prefix}wake`,
    integrations: `${prefix}integrations`,
    names: `${prefix}names`,
  };
}

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

/** A pipeline that also knows the scripts (ioredis adds defined commands to pipelines at run time). */
export type ScriptedPipeline = ChainableCommander & { [K in keyof typeof SCRIPTS]: (...args: (string | number)[]) => ScriptedPipeline };
