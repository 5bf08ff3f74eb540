/**
 * Shared state behind one small interface: the token cache and the rate limiters. In memory (the embedded
 * default: one process) or in Redis (a fleet of workers: one token per credential key, one rate limit per
 * scope, whichever worker sends). The engine only sees these types.
 */

export interface CachedToken<T = Record<string, unknown>> {
  value: T;
  obtained_at: number;
  /** Epoch ms after which the token is not used any more (stated lifetime minus a margin; Infinity: no lifetime). */
  refresh_at: number;
}

/** Runs the auth stage: the token's value and its stated lifetime in seconds. */
export type TokenFetch<T = Record<string, unknown>> = () => Promise<{ value: T; lifetime_s: number }>;

export interface TokenStore<T = Record<string, unknown>> {
  /**
   * The cached token for `key`, or the result of ONE shared `fetch` (single-flight) when there is none.
   * A failure `isPermanent` says cannot heal by itself is remembered briefly and answered without asking.
   */
  get(key: string, fetch: TokenFetch<T>, isPermanent: (e: unknown) => boolean): Promise<CachedToken<T>>;
  /** The token for `key` this process holds when it is still valid; never fetches (chained stages: is a later one cached?). */
  peek(key: string): CachedToken<T> | undefined;
  /** Drop the token for `key` (everywhere it is shared), but only if it is still `seen`: a token refreshed meanwhile stays. */
  invalidate(key: string, seen?: CachedToken<T>): void | Promise<void>;
  /** Forget this process's cached tokens and failures. */
  clear(): void;
  /** Token requests this process actually made (not those answered from the cache or by another worker). */
  readonly fetches: number;
}

/** Waits for the right to send one request. */
export interface Limiter {
  /** Resolves when the caller may send one request; rejects with signal.reason if aborted first. */
  acquire(signal?: AbortSignal): Promise<void>;
}

export interface RateLimitStore {
  /**
   * The limiter for one scope. `scope` undefined: a limiter of the caller's own (as many limiters as
   * callers). Callers naming the same scope share one budget; when they state different limits, the lowest applies.
   */
  limiter(scope: string | undefined, requests_per_minute: number): Limiter;
}

/** Where an engine keeps the state its integrations share (Engine option `store`). */
export interface Store {
  readonly kind: 'memory' | 'redis';
  readonly tokens: TokenStore<Record<string, unknown>>;
  readonly rateLimits: RateLimitStore;
  /** Release connections (Redis); the memory store has nothing to release. */
  close(): Promise<void>;
}
