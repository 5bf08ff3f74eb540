/**
 * A Redis URL as it may be shown in messages and logs, with every credential ioredis would read from it
 * hidden. ioredis takes a user and a password from the userinfo (`redis://user:pass@host`) and copies
 * every query parameter into its connection options (`?password=`, `?username=`, `?sentinelPassword=`,
 * `?sentinelUsername=`, and any option added later), so the userinfo is masked whole and every query
 * value is masked except the few known to be harmless. Parameter names stay: they say which form was used.
 */

/** Query parameters whose values are shown: they select a database or an address family, nothing secret. */
const SHOWN_PARAMS = new Set(['db', 'family']);

export const MASK = '***';

/** The URL with its credentials replaced by `***`; `(invalid URL)` when it does not parse. */
export function displayRedisUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return '(invalid URL)';
  }
  if (u.username) u.username = MASK;
  if (u.password) u.password = MASK;
  if (u.search) {
    const shown = new URLSearchParams();
    for (const [key, value] of u.searchParams) shown.append(key, SHOWN_PARAMS.has(key) ? value : MASK);
    u.search = shown.toString();
  }
  u.hash = '';
  return u.toString();
}
