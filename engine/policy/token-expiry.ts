/**
 * When to stop reusing an access token. Refreshing a little before the stated expiry covers clock
 * skew between us and the vendor and the time a request spends in flight, so a token never expires
 * between "looks valid" and "vendor checks it".
 */

/** Never refresh more than this early: long-lived tokens would otherwise be thrown away needlessly. */
const MAX_MARGIN_MS = 5 * 60_000;
/** Preferred minimum slack, for in-flight latency on very short tokens... */
const MIN_MARGIN_MS = 1_000;
/** ...but never more than this share of the lifetime, so even a very short token gets used. */
const MAX_MARGIN_SHARE = 0.5;

/**
 * How long before stated expiry a token is refreshed: 10% of its lifetime, at most 5 minutes
 * (common OAuth guidance refreshes ~5 min early), at least min(1 s, half the lifetime).
 * So a 2 s token is used for its first second, a 1079 s token is refreshed 107.9 s early, and a
 * 1 h token 5 min early. Non-positive or NaN lifetimes → 0.
 */
export function refreshMarginMs(lifetime_ms: number): number {
  if (!(lifetime_ms > 0)) return 0;
  const tenth = lifetime_ms * 0.1;
  const floor = Math.min(MIN_MARGIN_MS, lifetime_ms * MAX_MARGIN_SHARE);
  return Math.floor(Math.min(MAX_MARGIN_MS, Math.max(tenth, floor)));
}

/**
 * Epoch ms at which a token obtained at obtained_at with a stated lifetime (seconds) must be treated
 * as expired. Lifetime 0/negative/NaN → obtained_at (never reuse).
 *
 * An infinite lifetime is also treated as "never reuse": no real vendor issues one, so it signals a
 * parsing bug, and failing towards refreshing costs one extra token call while failing towards reuse
 * could send a dead token forever. A non-finite obtained_at returns 0 (the epoch: already expired)
 * because NaN would make every `now >= refreshAt` comparison false, i.e. reuse forever.
 */
export function refreshAt(obtained_at: number, lifetime_s: number): number {
  if (!Number.isFinite(obtained_at)) return 0;
  if (!Number.isFinite(lifetime_s) || lifetime_s <= 0) return obtained_at;
  const lifetime_ms = lifetime_s * 1000;
  return obtained_at + lifetime_ms - refreshMarginMs(lifetime_ms);
}

/**
 * Like refreshAt, except for a result the spec says has no lifetime at all (`lifetime_s` Infinity: no
 * `expires_in` in the answer and no `default_expires_in`): it is kept until a `reauth` rule drops it.
 */
export function keepUntil(obtained_at: number, lifetime_s: number): number {
  return lifetime_s === Infinity && Number.isFinite(obtained_at) ? Infinity : refreshAt(obtained_at, lifetime_s);
}

/** Longest a token without lifetime stays in a shared store (Redis needs an expiry to never leak keys). */
export const MAX_SHARED_KEEP_MS = 7 * 24 * 3_600_000;
