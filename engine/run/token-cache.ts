/** Moved to engine/store/token-cache.ts (the in-memory token store); kept so existing imports still work. */
export { TokenCache, DEFAULT_MAX_TOKENS, type TokenCacheOptions, type SharedTokens } from '../store/token-cache.js';
export type { CachedToken } from '../store/types.js';
