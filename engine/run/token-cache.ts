/**
 * Token cache shared by every integration of an engine. Tokens are keyed by the spec's declared cache
 * key (plus the vendor, the stage, the endpoint and a digest of the secrets, so that a record with a
 * wrong secret never rides on a token fetched with the right one). Fetches are single-flight: however
 * many deliveries need a token at once, one request is made and they all share its result, success or
 * failure. A permanent failure is remembered briefly so that a burst of events behind a bad secret
 * costs one token request, not one each.
 */
import { refreshAt } from '../policy/token-expiry.js';

export interface CachedToken<T> {
  value: T;
  obtained_at: number;
  /** Epoch ms after which the token is not used any more (stated lifetime minus a margin). */
  refresh_at: number;
}

export interface TokenCacheOptions {
  now?: () => number;
  /** How long a permanent (non-retryable) fetch failure is answered from memory. */
  failure_ttl_ms?: number;
}

export class TokenCache<T = Record<string, unknown>> {
  private readonly entries = new Map<string, CachedToken<T>>();
  private readonly inflight = new Map<string, Promise<CachedToken<T>>>();
  private readonly failures = new Map<string, { error: unknown; until: number }>();
  private readonly now: () => number;
  private readonly failureTtl: number;
  /** Token requests actually started, for tests and metrics. */
  fetches = 0;

  constructor(opts: TokenCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.failureTtl = opts.failure_ttl_ms ?? 5_000;
  }

  /**
   * The cached token for `key`, or the result of one shared `fetch` when there is none.
   * `fetch` resolves with the value and its stated lifetime in seconds.
   */
  async get(key: string, fetch: () => Promise<{ value: T; lifetime_s: number }>, isPermanent: (e: unknown) => boolean): Promise<CachedToken<T>> {
    const now = this.now();
    const hit = this.entries.get(key);
    if (hit && now < hit.refresh_at) return hit;
    const failed = this.failures.get(key);
    if (failed && now < failed.until) throw failed.error;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    this.fetches++;
    const p = (async () => {
      try {
        const { value, lifetime_s } = await fetch();
        const obtained_at = this.now();
        // Infinity: the response stated no lifetime and the spec set none, so it is kept until invalidated.
        const entry = { value, obtained_at, refresh_at: lifetime_s === Infinity ? Infinity : refreshAt(obtained_at, lifetime_s) };
        this.entries.set(key, entry);
        this.failures.delete(key);
        return entry;
      } catch (e) {
        this.entries.delete(key);
        if (isPermanent(e)) this.failures.set(key, { error: e, until: this.now() + this.failureTtl });
        throw e;
      } finally {
        this.inflight.delete(key);
      }
    })();
    this.inflight.set(key, p);
    return p;
  }

  /** The cached token for `key` when it is still valid; never fetches. */
  peek(key: string): CachedToken<T> | undefined {
    const hit = this.entries.get(key);
    return hit && this.now() < hit.refresh_at ? hit : undefined;
  }

  /** Drop the token for `key`, but only if it is still `seen`: a token another delivery just refreshed stays. */
  invalidate(key: string, seen?: CachedToken<T>): void {
    const cur = this.entries.get(key);
    if (cur && (!seen || cur === seen)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
    this.failures.clear();
  }
}
