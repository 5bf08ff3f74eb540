/**
 * The embedded default: state lives in this process. Tokens in a bounded LRU (engine/store/token-cache.ts),
 * rate limits in smooth token buckets (engine/policy/rate-limit.ts), one per scope.
 */
import { RateLimiter } from '../policy/rate-limit.js';
import { TokenCache, type TokenCacheOptions } from './token-cache.js';
import type { Limiter, RateLimitStore, Store } from './types.js';

export class MemoryRateLimits implements RateLimitStore {
  private readonly scoped = new Map<string, RateLimiter>();

  limiter(scope: string | undefined, requests_per_minute: number): Limiter {
    if (scope === undefined) return new RateLimiter(requests_per_minute);
    const existing = this.scoped.get(scope);
    if (existing) {
      existing.limitTo(requests_per_minute);
      return existing;
    }
    const created = new RateLimiter(requests_per_minute);
    this.scoped.set(scope, created);
    return created;
  }
}

export function createMemoryStore(opts: Omit<TokenCacheOptions, 'shared'> = {}): Store {
  return {
    kind: 'memory',
    tokens: new TokenCache(opts),
    rateLimits: new MemoryRateLimits(),
    close: async () => {},
  };
}
