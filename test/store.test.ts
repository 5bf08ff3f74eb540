/**
 * Shared state: the bounded in-memory token cache (issue 8 #16), rate-limit scopes, and the Redis store
 * against a real redis-server — several engines with their own connections stand in for the processes of
 * a fleet here (test/fleet.test.ts runs real processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createRedisStore, DeliveryError, Engine, REASONS, type RedisStore } from '../engine/index.js';
import { MemoryRateLimits } from '../engine/store/memory.js';
import { rateLimitScope } from '../engine/store/scope.js';
import { TokenCache } from '../engine/store/token-cache.js';
import { parseStoreKey, seal, unseal } from '../engine/store/seal.js';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { event, referenceRecord, within, type Json } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { run } from '../cli/run.js';
import type { CliIO } from '../cli/io.js';

const EVENTS_PATH = '/interaction/v1/events';
const bearer = (h: string | string[] | undefined): string => String(h ?? '').replace(/^Bearer /, '');
const permanent = (e: unknown) => e instanceof DeliveryError && !e.retryable;

describe('in-memory token cache is bounded and evicts', () => {
  it('keeps at most max_entries tokens, evicting the least recently used', async () => {
    const cache = new TokenCache({ max_entries: 3 });
    let fetched = 0;
    const fetch = async () => ({ value: { t: `tok${++fetched}` }, lifetime_s: 3600 });
    for (const k of ['a', 'b', 'c']) await cache.get(k, fetch, permanent);
    await cache.get('a', fetch, permanent); // a is now the most recently used
    await cache.get('d', fetch, permanent); // evicts b
    expect(cache.size).toBe(3);
    expect(fetched).toBe(4);
    await cache.get('a', fetch, permanent);
    expect(fetched).toBe(4); // still cached
    await cache.get('b', fetch, permanent);
    expect(fetched).toBe(5); // was evicted: fetched again
    expect(cache.size).toBe(3);
  });

  it('drops a token once it reaches its refresh time, without waiting for a lookup of that key', async () => {
    let now = 1_000_000;
    const cache = new TokenCache({ now: () => now, max_entries: 100 });
    for (let i = 0; i < 50; i++) await cache.get(`k${i}`, async () => ({ value: { i }, lifetime_s: 10 }), permanent);
    expect(cache.size).toBe(50);
    now += 60_000; // every token is past its refresh time, and nobody asks for those keys again
    await cache.get('fresh', async () => ({ value: { i: -1 }, lifetime_s: 3600 }), permanent);
    expect(cache.size).toBe(1); // the expired ones were swept, not kept until looked up
    let live = 0;
    for (let i = 0; i < 50; i++) {
      let refetched = false;
      await cache.get(`k${i}`, async () => ((refetched = true), { value: { i }, lifetime_s: 10 }), permanent);
      if (!refetched) live++;
    }
    expect(live).toBe(0);
  });

  it('a million distinct keys over time never hold more than max_entries', async () => {
    const cache = new TokenCache({ max_entries: 1_000 });
    for (let i = 0; i < 20_000; i++) await cache.get(`key-${i}`, async () => ({ value: { i }, lifetime_s: 3600 }), permanent);
    expect(cache.size).toBe(1_000);
  });
});

describe('rate-limit scope', () => {
  it('records of one tenant and business unit share a scope; another business unit or tenant does not', async () => {
    const engine = await Engine.load();
    try {
      const spec = engine.specs.get('salesforce_marketing_cloud')!;
      const base = referenceRecord();
      const rec = (name: string, config: Json) => ({ name, config: { ...base.config, ...config } });
      const a = rateLimitScope(spec, rec('A', { account_id: '123' }), undefined);
      expect(rateLimitScope(spec, rec('B', { account_id: 123, event_definition_key: 'other' }), undefined)).toBe(a);
      expect(rateLimitScope(spec, rec('C', { account_id: '456' }), undefined)).not.toBe(a);
      expect(rateLimitScope(spec, rec('D', { account_id: '123', tenant_subdomain: 'mc-other' }), undefined)).not.toBe(a);
      // The batch spec extends the same partial: it draws from the same business unit's budget.
      expect(rateLimitScope(engine.specs.get('salesforce_marketing_cloud_journey_batch')!, rec('E', { account_id: '123' }), undefined)).toBe(a);
    } finally {
      engine.close();
    }
  });

  it('in memory, one limiter per scope; the lowest stated limit applies', () => {
    const limits = new MemoryRateLimits();
    const a = limits.limiter('s', 600);
    const b = limits.limiter('s', 300);
    expect(b).toBe(a);
    expect((a as unknown as { requests_per_minute: number }).requests_per_minute).toBe(300);
    expect(limits.limiter('s', 1200)).toBe(a);
    expect((a as unknown as { requests_per_minute: number }).requests_per_minute).toBe(300);
    expect(limits.limiter(undefined, 600)).not.toBe(limits.limiter(undefined, 600));
  });

  it('two records of one business unit at 600/min each send at most 600/min together (one process)', async () => {
    const emu = await startMarketingCloudEmulator();
    const engine = await Engine.load({ endpoint: emu.url });
    try {
      const r = referenceRecord();
      const one = engine.createIntegration({ ...r, name: 'one', rate_limit: { requests_per_minute: 600 } });
      const two = engine.createIntegration({ ...r, name: 'two', config: { ...r.config, event_definition_key: 'lead_submitted' }, rate_limit: { requests_per_minute: 600 } });
      // One limiter object for both records (a white-box check that holds however loaded the machine is)...
      expect((one as unknown as { limiter: unknown }).limiter).toBe((two as unknown as { limiter: unknown }).limiter);
      const events = Array.from({ length: 15 }, () => event());
      const started = Date.now();
      const outcomes = await within(30_000, Promise.all(events.flatMap((e) => [one.deliver(e), two.deliver({ ...e, event_id: `${e.event_id}-2` })])));
      const took = Date.now() - started;
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
      expect(emu.requests.filter((q) => q.path === EVENTS_PATH)).toHaveLength(30);
      // ...and the budget is one: 31 requests (the token's and 30 sends) at 10/s after a burst of 10 need at
      // least 2.1 s; two budgets of 600/min would let them all out in about 0.6 s. (A lower bound: load only slows.)
      expect(took).toBeGreaterThanOrEqual(2_000);
    } finally {
      engine.close();
      await emu.close();
    }
  });
});

describe('sealing', () => {
  it('AES-256-GCM round trip; another key or another Redis key does not open it; bad keys are refused', () => {
    const key = randomBytes(32);
    const sealed = seal(key, 'k1', 'secret-token');
    expect(sealed).not.toContain('secret-token');
    expect(unseal(key, 'k1', sealed)).toBe('secret-token');
    expect(unseal(randomBytes(32), 'k1', sealed)).toBeUndefined();
    expect(unseal(key, 'k2', sealed)).toBeUndefined();
    expect(parseStoreKey(key.toString('hex'))).toEqual(key);
    expect(parseStoreKey(key.toString('base64'))).toEqual(key);
    expect(() => parseStoreKey('hunter2')).toThrow(/SIGNAL_STORE_KEY must be 32 random bytes/);
  });
});

describe('Redis store (real redis-server)', () => {
  let redis: RedisServer;
  let emu: Emulator;
  let raw: Redis;
  const opened: { close(): Promise<void> }[] = [];
  let prefixN = 0;

  beforeAll(async () => {
    redis = await startRedis();
    emu = await startMarketingCloudEmulator();
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const s of opened) await s.close();
    raw?.disconnect();
    await emu?.close();
    await redis?.stop();
  });

  /** `n` engines, each with its own Redis connection: what n worker processes would have. */
  async function fleet(n: number, opts: { encryptionKey?: string; lockTtlMs?: number } = {}): Promise<{ engines: Engine[]; stores: RedisStore[]; prefix: string }> {
    const prefix = `t${++prefixN}:`;
    const stores: RedisStore[] = [];
    const engines: Engine[] = [];
    for (let i = 0; i < n; i++) {
      const store = await createRedisStore({ url: redis.url, keyPrefix: prefix, ...opts });
      const engine = await Engine.load({ endpoint: emu.url, store });
      stores.push(store);
      engines.push(engine);
      opened.push({ close: async () => (engine.close(), await store.close()) });
    }
    return { engines, stores, prefix };
  }

  it('one token request for 3 engines and 600 concurrent deliveries; a revoked token is replaced once for all', async () => {
    emu.reset();
    const { engines, stores } = await fleet(3);
    const integrations = engines.map((e) => e.createIntegration(referenceRecord()));
    const first = await within(30_000, Promise.all(Array.from({ length: 600 }, (_, i) => integrations[i % 3]!.deliver(event()))));
    expect(first.filter((o) => o.status === 'delivered')).toHaveLength(600);
    expect(emu.tokenRequests()).toHaveLength(1);

    emu.revokeTokens();
    const second = await within(30_000, Promise.all(Array.from({ length: 300 }, (_, i) => integrations[i % 3]!.deliver(event()))));
    expect(second.filter((o) => o.status === 'delivered')).toHaveLength(300);
    expect(emu.stats.unauthorized).toBeGreaterThan(0); // every engine met the revoked token...
    expect(emu.tokenRequests()).toHaveLength(2); // ...and one new token served them all
    const sendTokens = new Set(emu.requests.filter((r) => r.path === EVENTS_PATH && r.status === 201).map((r) => bearer(r.headers['authorization'])));
    expect(sendTokens.size).toBe(2);
    // Each process reads a token from Redis once per lifetime, not once per delivery: the Redis commands for
    // tokens stay a small constant (lock, polls while another fetches, write) for 900 deliveries.
    const tokenCommands = stores.reduce((n, s) => n + s.stats.token_commands, 0);
    console.log(`redis store: ${tokenCommands} token commands for 900 deliveries by 3 engines (${(tokenCommands / 900).toFixed(3)} per delivery)`);
    expect(tokenCommands).toBeLessThan(60);
  });

  it('stores the token sealed when a key is given: the raw Redis value does not contain it', async () => {
    emu.reset();
    const key = randomBytes(32).toString('hex');
    const { engines, stores } = await fleet(1, { encryptionKey: key });
    const integration = engines[0]!.createIntegration(referenceRecord());
    expect((await integration.deliver(event())).status).toBe('delivered');
    const token = bearer(emu.requests.find((r) => r.path === EVENTS_PATH)!.headers['authorization']);
    expect(token.length).toBeGreaterThan(10);
    const keys = await raw.keys(`${stores[0]!.tokenKeys('x').token.split('token:')[0]}token:*`);
    expect(keys).toHaveLength(1);
    const value = (await raw.get(keys[0]!))!;
    expect(value.startsWith('gcm1:')).toBe(true);
    expect(value).not.toContain(token);
    expect(Buffer.from(value.slice(5), 'base64').toString('latin1')).not.toContain(token);
  });

  it('a worker with the same key shares the sealed token; one with another key cannot read it and fetches its own', async () => {
    emu.reset();
    const key = randomBytes(32).toString('hex');
    const prefix = `t${++prefixN}:`;
    const mk = async (k: string) => {
      const store = await createRedisStore({ url: redis.url, keyPrefix: prefix, encryptionKey: k });
      const engine = await Engine.load({ endpoint: emu.url, store });
      opened.push({ close: async () => (engine.close(), await store.close()) });
      return engine.createIntegration(referenceRecord());
    };
    const a = await mk(key);
    const b = await mk(key);
    expect((await a.deliver(event())).status).toBe('delivered');
    expect((await b.deliver(event())).status).toBe('delivered');
    expect(emu.tokenRequests()).toHaveLength(1);
    const c = await mk(randomBytes(32).toString('hex'));
    expect((await c.deliver(event())).status).toBe('delivered');
    expect(emu.tokenRequests()).toHaveLength(2);
  });

  it('a lock holder that dies (SIGKILL) blocks the key no longer than the lock TTL', async () => {
    emu.reset();
    const prefix = `t${++prefixN}:`;
    const cacheKey = 'credential-key-of-a-dead-holder';
    // A real process takes the lock and hangs in its token request until it is killed.
    const holder = spawn(process.execPath, [new URL('./fixtures/token-lock-holder.mjs', import.meta.url).pathname, redis.url, prefix, cacheKey, '600'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await within(10_000, new Promise<void>((resolve) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve())), 'holder');
    const store = await createRedisStore({ url: redis.url, keyPrefix: prefix, lockTtlMs: 600 });
    opened.push(store);
    const lockKey = store.tokenKeys(cacheKey).lock;
    // Alive, the holder renews its lock past its TTL: another worker waits instead of fetching.
    await sleep(900);
    expect(await raw.exists(lockKey)).toBe(1);
    let fetches = 0;
    const waiting = store.tokens.get(cacheKey, async () => (fetches++, { value: { access_token: 'fresh' }, lifetime_s: 60 }), permanent);
    await sleep(300);
    expect(fetches).toBe(0);
    holder.kill('SIGKILL');
    const entry = await within(5_000, waiting, 'token after the holder died');
    expect(entry.value).toEqual({ access_token: 'fresh' });
    expect(fetches).toBe(1);
    expect(await raw.exists(lockKey)).toBe(0);
  });

  it('a 401 invalidates the token fleet-wide only if it is still the token that failed (compare-and-delete)', async () => {
    const prefix = `t${++prefixN}:`;
    const a = await createRedisStore({ url: redis.url, keyPrefix: prefix });
    const b = await createRedisStore({ url: redis.url, keyPrefix: prefix });
    opened.push(a, b);
    let n = 0;
    const fetch = async () => ({ value: { access_token: `tok-${++n}` }, lifetime_s: 600 });
    const seenByA = await a.tokens.get('k', fetch, permanent);
    const seenByB = await b.tokens.get('k', fetch, permanent);
    expect(seenByB.value).toEqual({ access_token: 'tok-1' });
    await a.tokens.invalidate('k', seenByA); // A's 401: tok-1 is gone for everyone
    const refreshed = await a.tokens.get('k', fetch, permanent);
    expect(refreshed.value).toEqual({ access_token: 'tok-2' });
    await b.tokens.invalidate('k', seenByB); // B's late 401 for tok-1 must not delete tok-2
    expect((await b.tokens.get('k', fetch, permanent)).value).toEqual({ access_token: 'tok-2' });
    expect(n).toBe(2);
  });

  it('a permanent token failure is remembered fleet-wide for a while: one token request for bad credentials', async () => {
    emu.reset();
    const { engines } = await fleet(3);
    const bad = referenceRecord();
    bad.config.client_secret = 'wrong-secret-value-0042';
    const outcomes = await Promise.all(engines.flatMap((e) => {
      const integration = e.createIntegration(bad);
      return Array.from({ length: 20 }, () => integration.deliver(event()));
    }));
    expect(outcomes.every((o) => o.status === 'failed' && o.reason === REASONS.auth && o.retryable === false)).toBe(true);
    expect(outcomes.every((o) => o.hint && /client_id\/client_secret/.test(o.hint))).toBe(true);
    expect(emu.tokenRequests()).toHaveLength(1);
    expect(JSON.stringify(outcomes)).not.toContain('wrong-secret-value-0042');
  });

  it('the GCRA script shares one budget across connections: 600/min lets a burst of 10 out, then spaces requests 100 ms apart', async () => {
    const prefix = `t${++prefixN}:`;
    const stores = [await createRedisStore({ url: redis.url, keyPrefix: prefix }), await createRedisStore({ url: redis.url, keyPrefix: prefix })];
    opened.push(...stores);
    const limiters = stores.map((s) => s.rateLimits.limiter('scope-x', 600));
    const started = Date.now();
    const done: number[] = [];
    await Promise.all(Array.from({ length: 30 }, (_, i) => limiters[i % 2]!.acquire().then(() => done.push(Date.now() - started))));
    done.sort((x, y) => x - y);
    // Upper bounds only (a loaded machine is slower, never faster): at most 10 + 10/s (+1 for timer granularity).
    const excess = done.map((t, i) => ({ count: i + 1, allowed: 10 + (t / 1000) * 10 + 1 })).filter((p) => p.count > p.allowed);
    expect(excess).toEqual([]);
    expect(done).toHaveLength(30);
    expect(stores[0]!.stats.rate_commands + stores[1]!.stats.rate_commands).toBe(30); // one round trip per request
    expect(stores[0]!.stats.rate_waits + stores[1]!.stats.rate_waits).toBeGreaterThanOrEqual(20); // all but the burst waited
  });

  it('Redis gone mid-run: deliveries fail retryably as store_unavailable, naming no URL or secret', async () => {
    const own = await startRedis();
    const store = await createRedisStore({ url: own.url, keyPrefix: 'gone:', redis: { maxRetriesPerRequest: 0, retryStrategy: () => null } });
    const engine = await Engine.load({ endpoint: emu.url, store });
    try {
      const integration = engine.createIntegration({ ...referenceRecord(), rate_limit: { requests_per_minute: 6000 } });
      expect((await integration.deliver(event())).status).toBe('delivered');
      await own.stop();
      engine.tokens.clear();
      const o = await within(15_000, integration.deliver(event()));
      expect(o.status).toBe('failed');
      expect(o.reason).toBe(REASONS.store);
      expect(o.retryable).toBe(true);
      expect(JSON.stringify(o)).not.toContain(String(own.port));
    } finally {
      engine.close();
      await store.close();
    }
  });

  it('createRedisStore fails clearly (host:port, no password) when Redis is unreachable', async () => {
    await expect(createRedisStore({ url: 'redis://:pa55word@127.0.0.1:1', redis: { retryStrategy: () => null } })).rejects.toThrow(/cannot connect to Redis at 127\.0\.0\.1:1/);
    await expect(createRedisStore({ url: 'redis://:pa55word@127.0.0.1:1', redis: { retryStrategy: () => null } })).rejects.not.toThrow(/pa55word/);
  });

  it('deliver --redis: an unreachable Redis is a configuration error (exit 2) naming host:port, never the password', async () => {
    let out = '';
    let err = '';
    const io: CliIO = { stdout: { write: (t: string) => ((out += t), true) }, stderr: { write: (t: string) => ((err += t), true) } };
    const examples = new URL('../examples/', import.meta.url).pathname;
    const code = await run(['deliver', '--integration', `${examples}integration.json`, '--events', `${examples}events.ndjson`, '--redis', 'redis://:pa55word@127.0.0.1:1'], io);
    expect(code).toBe(2);
    expect(err).toMatch(/cannot connect to Redis at 127\.0\.0\.1:1: connect ECONNREFUSED/);
    expect(err + out).not.toContain('pa55word');
  });
});
