/**
 * Shared state for a fleet of workers, in Redis (ioredis). Opt-in: `Engine.load({ store })`, CLI `--redis`.
 *
 * Tokens: one token request per credential key across every process. A miss takes a lock
 * (SET NX PX, owner id, kept alive while its holder lives) so a crashed holder blocks the key for at most
 * the lock's TTL; the others poll, bounded, until the holder writes the token (or a permanent failure,
 * remembered fleet-wide for a few seconds) or the lock is gone, and then take it themselves. Each process
 * keeps what it read in its own bounded cache until the token's refresh time (the same `refresh_at` for
 * everyone), so a delivery costs no Redis round trip for its token. A 401 deletes the token fleet-wide,
 * but only if Redis still holds the very token that failed (compare-and-delete in Lua): a token another
 * process already refreshed stays. Values are sealed with AES-256-GCM when a key is given; they are never logged.
 *
 * Rate limits: one atomic Lua script per request implementing GCRA (the generic cell rate algorithm,
 * a token bucket kept as one timestamp). Chosen over a library because the well-kept ones
 * (rate-limiter-flexible, BullMQ's limiter) count per fixed window — a minute's budget in one burst, twice
 * the limit across a window boundary — and refuse rather than queue: the script reserves the next free
 * slot in order and answers how long to wait,
 * on Redis's own clock (TIME), so processes whose clocks disagree still share one budget. Same policy as
 * the in-memory limiter (engine/policy/rate-limit.ts): N/60 per second sustained, bursts of one second's worth.
 *
 * Keys (prefix default `signal:`; the engine's cache keys are long JSON, so they are hashed):
 *   <prefix>token:<sha256>       the token (sealed), expiring at its refresh time
 *   <prefix>token-lock:<sha256>  who is fetching it now
 *   <prefix>token-fail:<sha256>  a permanent failure (no secret in it), for failure_ttl_ms
 *   <prefix>rate:<sha256>        GCRA state of one rate-limit scope
 */
import { createHash, randomUUID } from 'node:crypto';
import type { RedisOptions } from 'ioredis';
import { DeliveryError, REASONS, SignalError, type Reason } from '../errors.js';
import { keepUntil, MAX_SHARED_KEEP_MS } from '../policy/token-expiry.js';
import { parseStoreKey, seal, unseal } from './seal.js';
import { TokenCache, type SharedTokens } from './token-cache.js';
import type { CachedToken, Limiter, RateLimitStore, Store, TokenFetch } from './types.js';

export interface RedisStoreOptions {
  /** redis://[:password@]host:port[/db] (rediss:// for TLS). */
  url: string;
  /** Prefix of every key; one per customer deployment keeps keyspaces apart. Default `signal:`. */
  keyPrefix?: string;
  /** 32 bytes (64 hex digits or base64): tokens are stored sealed with it (AES-256-GCM). Default: env SIGNAL_STORE_KEY. */
  encryptionKey?: string;
  /** How long a token lock lasts without its holder renewing it (the holder renews it while alive). Default 10 s. */
  lockTtlMs?: number;
  /** Longest a process waits for another's token request (which may retry for up to its retry budget, 60 s by default) before this delivery fails retryably. Default 60 s. */
  waitTimeoutMs?: number;
  /** How long a permanent token failure (bad credentials) is answered without asking again. Default 5 s. */
  tokenFailureTtlMs?: number;
  /** Most tokens each process keeps locally. */
  maxLocalTokens?: number;
  /** Extra ioredis options. */
  redis?: RedisOptions;
}

export interface RedisStore extends Store {
  readonly kind: 'redis';
  /** Commands sent to Redis by this process, by purpose (round trips per event), and rate-limit waits (metrics). */
  readonly stats: { token_commands: number; rate_commands: number; rate_waits: number; rate_wait_ms: number };
  /** The Redis keys of one token cache key (tests, operators). */
  tokenKeys(cacheKey: string): { token: string; lock: string; fail: string };
}

// KEYS: token, fail, lock. ARGV: owner, lock ttl ms. One round trip: the token, a failure, the lock, or how long to wait.
const ACQUIRE = `
local t = redis.call('GET', KEYS[1])
if t then return {'token', t} end
local f = redis.call('GET', KEYS[2])
if f then return {'failed', f} end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'locked', ''} end
return {'wait', tostring(redis.call('PTTL', KEYS[3]))}`;

// KEYS: value key, lock. ARGV: value, ttl ms (0: do not store), owner. Write the result and unlock, atomically.
const PUT_AND_UNLOCK = `
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1`;

// KEYS: lock. ARGV: owner, ttl ms. Renew the lock only if we still hold it.
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// KEYS: token. ARGV: the stored value that failed. Compare-and-delete: a token refreshed meanwhile stays.
const DELETE_IF = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

// KEYS: scope. ARGV: emission interval ms (60000 / requests_per_minute). GCRA with queueing: reserve the
// next slot, answer the wait in ms. `tat` is the theoretical arrival time; a burst of one second's worth
// (1000 / interval requests) is tolerated after idle time. When callers state different limits for one
// scope, the strictest stated within the last minute applies.
const GCRA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local iv = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'tat', 'iv', 'iv_at')
local tat = tonumber(h[1]) or 0
local siv, siv_at = tonumber(h[2]), tonumber(h[3])
if siv and siv_at and siv > iv and now - siv_at < 60000 then
  iv = siv
else
  redis.call('HSET', KEYS[1], 'iv', ARGV[1], 'iv_at', tostring(now))
end
local tau = math.max(0, 1000 - iv)
local slot = math.max(tat, now - tau)
redis.call('HSET', KEYS[1], 'tat', tostring(slot + iv))
redis.call('PEXPIRE', KEYS[1], math.ceil(slot + iv - now) + 60000)
return tostring(math.max(0, slot - now))`;

type Scripts = {
  acquire(tok: string, fail: string, lock: string, owner: string, ttl: number): Promise<[string, string]>;
  putAndUnlock(key: string, lock: string, value: string, ttl: number, owner: string): Promise<number>;
  renew(lock: string, owner: string, ttl: number): Promise<number>;
  deleteIf(key: string, value: string): Promise<number>;
  del(key: string): Promise<number>;
  gcra(key: string, interval: number): Promise<string>;
};

const hash = (s: string) => createHash('sha256').update(s).digest('base64url');

/** Redis failed (down, timed out): a retryable outcome that says so, never the URL (it may hold a password). */
function storeError(e: unknown): DeliveryError {
  if (e instanceof DeliveryError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new DeliveryError(REASONS.store, `shared state (Redis) unavailable: ${why}`, {
    retryable: true,
    hint: 'The workers could not reach Redis: check that it runs and that --redis / SIGNAL_REDIS_URL points at it, then send the dead letters again.',
    cause: e,
  });
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason ?? new DOMException('The operation was aborted.', 'AbortError'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface FailureRecord {
  code: Reason;
  message: string;
  hint?: string;
  http_status?: number;
  vendor_code?: string | number;
  vendor_message?: string;
}

class RedisTokens implements SharedTokens {
  constructor(
    private readonly scripts: Scripts,
    private readonly keys: (cacheKey: string) => { token: string; lock: string; fail: string },
    private readonly sealKey: Buffer | undefined,
    private readonly opts: { lockTtlMs: number; waitTimeoutMs: number; failureTtlMs: number },
    private readonly count: () => void,
  ) {}

  private encode(redisKey: string, entry: CachedToken<unknown>): string {
    const text = JSON.stringify({ v: entry.value, o: entry.obtained_at, r: entry.refresh_at });
    return this.sealKey ? seal(this.sealKey, redisKey, text) : text;
  }

  private decode<T>(redisKey: string, raw: string): CachedToken<T> | undefined {
    const text = this.sealKey ? unseal(this.sealKey, redisKey, raw) : raw.startsWith('{') ? raw : undefined;
    if (text === undefined) return undefined;
    try {
      const o = JSON.parse(text) as { v: T; o: number; r: number | null };
      // JSON has no Infinity: null is a result without lifetime (kept until a reauth drops it).
      return { value: o.v, obtained_at: o.o, refresh_at: o.r ?? Infinity };
    } catch {
      return undefined;
    }
  }

  private async call<R>(f: () => Promise<R>): Promise<R> {
    this.count();
    try {
      return await f();
    } catch (e) {
      throw storeError(e);
    }
  }

  async obtain<T>(cacheKey: string, fetch: TokenFetch<T>, isPermanent: (e: unknown) => boolean): Promise<{ entry: CachedToken<T>; raw: string | undefined }> {
    const k = this.keys(cacheKey);
    const owner = randomUUID();
    const deadline = Date.now() + this.opts.waitTimeoutMs;
    let pause = 10;
    for (;;) {
      const [state, payload] = await this.call(() => this.scripts.acquire(k.token, k.fail, k.lock, owner, this.opts.lockTtlMs));
      if (state === 'token') {
        const entry = this.decode<T>(k.token, payload);
        // Redis's expiry decides whether a shared token is still good, not this process's clock (which may
        // be ahead of the writer's; the local cache then just keeps nothing).
        if (entry) return { entry, raw: payload };
        // Sealed with another key, or not sealed though we have a key: drop it and fetch one we can use.
        await this.call(() => this.scripts.deleteIf(k.token, payload));
        continue;
      }
      if (state === 'failed') throw rebuildFailure(payload);
      if (state === 'locked') return this.fetchHolding(k, owner, fetch, isPermanent);
      // Another process is fetching: poll (10 ms, growing to 100 ms) until its token, its failure, or its lock's end.
      if (Date.now() > deadline) {
        throw new DeliveryError(REASONS.auth, `no token after waiting ${this.opts.waitTimeoutMs} ms for another worker's token request`, { retryable: true });
      }
      const lockLeft = Number(payload);
      await abortableSleep(Math.max(1, Math.min(pause, lockLeft > 0 ? lockLeft : pause)));
      pause = Math.min(100, Math.ceil(pause * 1.5));
    }
  }

  private async fetchHolding<T>(
    k: { token: string; lock: string; fail: string },
    owner: string,
    fetch: TokenFetch<T>,
    isPermanent: (e: unknown) => boolean,
  ): Promise<{ entry: CachedToken<T>; raw: string | undefined }> {
    // Keep the lock while we live (a token request with retries can outlast one TTL); a dead holder stops renewing.
    const renew = setInterval(() => {
      this.count();
      this.scripts.renew(k.lock, owner, this.opts.lockTtlMs).catch(() => {});
    }, Math.max(50, Math.floor(this.opts.lockTtlMs / 3)));
    renew.unref();
    let result: { value: T; lifetime_s: number };
    try {
      result = await fetch();
    } catch (e) {
      clearInterval(renew);
      const permanent = isPermanent(e);
      const record = permanent ? JSON.stringify(failureRecord(e)) : '';
      // A permanent failure is told to the whole fleet for a while; either way the lock is released now.
      await this.call(() => this.scripts.putAndUnlock(k.fail, k.lock, record, permanent ? this.opts.failureTtlMs : 0, owner)).catch(() => {});
      throw e;
    }
    clearInterval(renew);
    const obtained_at = Date.now();
    const entry: CachedToken<T> = { value: result.value, obtained_at, refresh_at: keepUntil(obtained_at, result.lifetime_s) };
    const raw = this.encode(k.token, entry as CachedToken<unknown>);
    const ttl = Math.floor(Math.min(entry.refresh_at - Date.now(), MAX_SHARED_KEEP_MS));
    // The token is good even if Redis fails now: the others will fetch their own once the lock expires.
    await this.call(() => this.scripts.putAndUnlock(k.token, k.lock, raw, Math.max(0, ttl), owner)).catch(() => {});
    return { entry, raw: ttl > 0 ? raw : undefined };
  }

  async invalidate(cacheKey: string, raw: string | undefined): Promise<void> {
    const k = this.keys(cacheKey);
    // Best effort: if Redis is away, the token expires there by itself and the next 401 tries again.
    await this.call(() => (raw === undefined ? this.scripts.del(k.token) : this.scripts.deleteIf(k.token, raw))).catch(() => {});
  }
}

function failureRecord(e: unknown): FailureRecord {
  if (e instanceof DeliveryError) {
    return {
      code: e.code,
      message: e.message,
      ...(e.hint ? { hint: e.hint } : {}),
      ...(e.http_status !== undefined ? { http_status: e.http_status } : {}),
      ...(e.vendor_code !== undefined ? { vendor_code: e.vendor_code } : {}),
      ...(e.vendor_message ? { vendor_message: e.vendor_message } : {}),
    };
  }
  return { code: REASONS.auth, message: 'the token request failed' };
}

function rebuildFailure(text: string): DeliveryError {
  let r: FailureRecord;
  try {
    r = JSON.parse(text) as FailureRecord;
  } catch {
    r = { code: REASONS.auth, message: 'the token request failed' };
  }
  return new DeliveryError(r.code, r.message, {
    retryable: false,
    ...(r.hint ? { hint: r.hint } : {}),
    ...(r.http_status !== undefined ? { http_status: r.http_status } : {}),
    ...(r.vendor_code !== undefined ? { vendor_code: r.vendor_code } : {}),
    ...(r.vendor_message ? { vendor_message: r.vendor_message } : {}),
  });
}

class RedisLimiter implements Limiter {
  constructor(
    private readonly scripts: Scripts,
    private readonly key: string,
    private readonly intervalMs: number,
    private readonly count: (waitedMs?: number) => void,
  ) {}

  async acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
    this.count();
    let wait: number;
    try {
      wait = Number(await this.scripts.gcra(this.key, this.intervalMs));
    } catch (e) {
      throw storeError(e);
    }
    // The slot is reserved; an abort while waiting gives it up (the budget loses one request, never gains one).
    if (wait > 0) {
      this.count(wait);
      await abortableSleep(Math.ceil(wait), signal);
    }
  }
}

class RedisRateLimits implements RateLimitStore {
  constructor(
    private readonly scripts: Scripts,
    private readonly prefix: string,
    private readonly count: (waitedMs?: number) => void,
  ) {}

  limiter(scope: string | undefined, requests_per_minute: number): Limiter {
    if (!Number.isFinite(requests_per_minute) || requests_per_minute <= 0) {
      throw new RangeError(`requests_per_minute must be a positive finite number, got ${requests_per_minute}`);
    }
    const key = `${this.prefix}rate:${hash(scope ?? randomUUID())}`;
    return new RedisLimiter(this.scripts, key, 60_000 / requests_per_minute, this.count);
  }
}

/** `host:port` of a Redis URL, for messages (never the password). */
export function redisTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the given URL';
  }
}

/**
 * Connect to Redis (fails with a SignalError naming host:port when it cannot within `connectTimeout`) and
 * return the store to pass as `Engine.load({ store })`. Close it with `store.close()` when done.
 */
export async function createRedisStore(opts: RedisStoreOptions): Promise<RedisStore> {
  const keyText = opts.encryptionKey ?? process.env.SIGNAL_STORE_KEY;
  const sealKey = keyText ? parseStoreKey(keyText) : undefined;
  const prefix = opts.keyPrefix ?? 'signal:';
  if (!/^rediss?:\/\//.test(opts.url)) throw new SignalError('store.redis', `the Redis URL must start with redis:// or rediss:// (got '${opts.url.split(':')[0]}:...')`);
  // Loaded only when asked for: the embedded default (memory) never pays for the Redis client.
  const { Redis } = await import('ioredis');
  const redis = new Redis(opts.url, {
    // A delivery waits at most a few seconds on a Redis that went away, then fails retryably (store_unavailable).
    maxRetriesPerRequest: 2,
    connectTimeout: 5_000,
    // Concurrent deliveries' commands go out in one write: fewer round trips under load.
    enableAutoPipelining: true,
    lazyConnect: true,
    ...opts.redis,
  });
  let lastError: Error | undefined;
  redis.on('error', (e: Error) => {
    lastError = e; // ioredis reconnects by itself; commands meanwhile fail with their own error
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    // ioredis rejects with "Connection is closed."; the socket's own error (ECONNREFUSED...) says more.
    const why = lastError?.message ?? (e as Error)?.message ?? 'unknown error';
    throw new SignalError('store.redis', `cannot connect to Redis at ${redisTarget(opts.url)}: ${why}`);
  }
  redis.defineCommand('signalAcquire', { numberOfKeys: 3, lua: ACQUIRE });
  redis.defineCommand('signalPutAndUnlock', { numberOfKeys: 2, lua: PUT_AND_UNLOCK });
  redis.defineCommand('signalRenew', { numberOfKeys: 1, lua: RENEW });
  redis.defineCommand('signalDeleteIf', { numberOfKeys: 1, lua: DELETE_IF });
  redis.defineCommand('signalGcra', { numberOfKeys: 1, lua: GCRA });
  const r = redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const scripts: Scripts = {
    acquire: (...a) => r.signalAcquire!(...a) as Promise<[string, string]>,
    putAndUnlock: (...a) => r.signalPutAndUnlock!(...a) as Promise<number>,
    renew: (...a) => r.signalRenew!(...a) as Promise<number>,
    deleteIf: (...a) => r.signalDeleteIf!(...a) as Promise<number>,
    del: (key) => redis.del(key),
    gcra: (...a) => r.signalGcra!(...a) as Promise<string>,
  };
  const stats = { token_commands: 0, rate_commands: 0, rate_waits: 0, rate_wait_ms: 0 };
  const tokenKeys = (cacheKey: string) => {
    const h = hash(cacheKey);
    return { token: `${prefix}token:${h}`, lock: `${prefix}token-lock:${h}`, fail: `${prefix}token-fail:${h}` };
  };
  const failureTtlMs = opts.tokenFailureTtlMs ?? 5_000;
  const shared = new RedisTokens(
    scripts,
    tokenKeys,
    sealKey,
    { lockTtlMs: opts.lockTtlMs ?? 10_000, waitTimeoutMs: opts.waitTimeoutMs ?? 60_000, failureTtlMs },
    () => stats.token_commands++,
  );
  const tokens = new TokenCache<Record<string, unknown>>({
    shared,
    failure_ttl_ms: failureTtlMs,
    ...(opts.maxLocalTokens !== undefined ? { max_entries: opts.maxLocalTokens } : {}),
  });
  return {
    kind: 'redis',
    tokens,
    rateLimits: new RedisRateLimits(scripts, prefix, (waited) => {
      if (waited === undefined) stats.rate_commands++;
      else {
        stats.rate_waits++;
        stats.rate_wait_ms += waited;
      }
    }),
    stats,
    tokenKeys,
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
