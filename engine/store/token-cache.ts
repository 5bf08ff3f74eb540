/**
 * Token cache shared by every integration of an engine. Tokens are keyed by the spec's declared cache
 * key (plus the stage, the endpoint and a digest of the secrets, so that a record with a wrong secret
 * never rides on a token fetched with the right one). Fetches are single-flight: however many deliveries
 * need a token at once, one request is made and they all share its result, success or failure. A
 * permanent failure is remembered briefly so that a burst of events behind a bad secret costs one token
 * request, not one each.
 *
 * Bounded: at most `max_entries` tokens, least recently used evicted first, and each token dropped once
 * it reaches its refresh time (a long-running runtime with many records must not grow without end).
 *
 * With a `shared` layer (Redis) this cache is the process-local front of a fleet-wide one: a miss asks
 * the shared layer, which makes one token request across every process; an invalidation is passed on.
 */
import { LRUCache } from 'lru-cache';
import { keepUntil } from '../policy/token-expiry.js';
import { concealWhenPrinted } from '../policy/redact.js';
import type { CachedToken, TokenFetch, TokenStore } from './types.js';

export type { CachedToken } from './types.js';

/** The fleet-wide layer behind the process-local cache (engine/store/redis.ts). */
export interface SharedTokens {
  /** The shared token for `key`, or one fetch across the fleet. `raw` identifies the stored token for `invalidate`. */
  obtain<T>(key: string, fetch: TokenFetch<T>, isPermanent: (e: unknown) => boolean): Promise<{ entry: CachedToken<T>; raw: string | undefined }>;
  /** Delete the shared token only if it is still `raw` (compare-and-delete); unconditionally without `raw`. */
  invalidate(key: string, raw: string | undefined): Promise<void>;
}

export interface TokenCacheOptions {
  now?: () => number;
  /** How long a permanent (non-retryable) fetch failure is answered from memory. */
  failure_ttl_ms?: number;
  /** Most tokens kept (least recently used evicted first). Default 10,000. */
  max_entries?: number;
  shared?: SharedTokens;
}

export const DEFAULT_MAX_TOKENS = 10_000;
const SWEEP_INTERVAL_MS = 60_000;

export class TokenCache<T = Record<string, unknown>> implements TokenStore<T> {
  private readonly entries: LRUCache<string, CachedToken<T>>;
  private readonly inflight = new Map<string, Promise<CachedToken<T>>>();
  private readonly failures: LRUCache<string, { error: unknown }>;
  /** What the shared layer stored for each entry, so an invalidation deletes only that token. */
  private readonly raw = new WeakMap<CachedToken<T>, string>();
  /** Tokens this process already invalidated: a burst of 401s for one token costs one shared delete, not one each. */
  private readonly invalidated = new WeakSet<CachedToken<T>>();
  private readonly now: () => number;
  private readonly failureTtl: number;
  private readonly shared: SharedTokens | undefined;
  private lastSweep: number;
  /** Token requests actually started by this process, for tests and metrics. */
  fetches = 0;

  constructor(opts: TokenCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.failureTtl = opts.failure_ttl_ms ?? 5_000;
    this.shared = opts.shared;
    this.lastSweep = this.now();
    const max = opts.max_entries ?? DEFAULT_MAX_TOKENS;
    // lru-cache tracks TTLs on the same clock as refresh_at, so an injected clock (tests) drives both.
    const perf = { now: this.now };
    this.entries = new LRUCache({ max, perf });
    this.failures = new LRUCache({ max, perf, ttl: Math.max(1, this.failureTtl) });
  }

  /** Tokens held now (expired ones included until they are evicted or looked up). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached token for `key`, or the result of one shared `fetch` when there is none.
   * `fetch` resolves with the value and its stated lifetime in seconds.
   */
  async get(key: string, fetch: TokenFetch<T>, isPermanent: (e: unknown) => boolean): Promise<CachedToken<T>> {
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && now < hit.refresh_at) return hit;
    const failed = this.failures.get(key);
    if (failed) throw failed.error;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const p = (async () => {
      try {
        const counted: TokenFetch<T> = () => {
          this.fetches++;
          return fetch();
        };
        let entry: CachedToken<T>;
        if (this.shared) {
          const got = await this.shared.obtain(key, counted, isPermanent);
          entry = got.entry;
          if (got.raw !== undefined) this.raw.set(entry, got.raw);
        } else {
          const { value, lifetime_s } = await counted();
          const obtained_at = this.now();
          entry = { value, obtained_at, refresh_at: keepUntil(obtained_at, lifetime_s) };
        }
        this.sweep();
        const ttl = entry.refresh_at - this.now();
        // No lifetime (Infinity): kept, least recently used first to go, until a reauth drops it.
        if (ttl === Infinity) this.entries.set(key, entry);
        else if (ttl > 0) this.entries.set(key, entry, { ttl });
        else this.entries.delete(key);
        this.failures.delete(key);
        return entry;
      } catch (e) {
        this.entries.delete(key);
        if (isPermanent(e)) this.failures.set(key, { error: e });
        throw e;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

  /** This process's token for `key` when it is still valid; never fetches, never asks the shared layer. */
  peek(key: string): CachedToken<T> | undefined {
    const hit = this.entries.get(key);
    return hit && this.now() < hit.refresh_at ? hit : undefined;
  }

  /** lru-cache drops an expired token when it is looked up; tokens nobody asks for again are swept here, at most once a minute. */
  private sweep(): void {
    const now = this.now();
    if (now - this.lastSweep < SWEEP_INTERVAL_MS) return;
    this.lastSweep = now;
    this.entries.purgeStale();
    this.failures.purgeStale();
  }

  /** Drop the token for `key`, but only if it is still `seen`: a token another delivery just refreshed stays. */
  async invalidate(key: string, seen?: CachedToken<T>): Promise<void> {
    const cur = this.entries.get(key, { allowStale: true });
    if (cur && (!seen || cur === seen)) this.entries.delete(key);
    if (!this.shared) return;
    if (seen) {
      if (this.invalidated.has(seen)) return;
      this.invalidated.add(seen);
    }
    const raw = seen ? this.raw.get(seen) : undefined;
    // A token this process never read from the shared layer is not there to delete.
    if (!seen || raw !== undefined) await this.shared.invalidate(key, raw);
  }

  clear(): void {
    this.entries.clear();
    this.failures.clear();
  }
}

// console.log(cache) must not print tokens.
concealWhenPrinted(TokenCache, (c) => ({ fetches: c.fetches }));
