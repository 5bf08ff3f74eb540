/**
 * Retry timing policy: how long to wait before the next delivery attempt, or whether to give up.
 *
 * Pure: no clock, no timers. The caller tracks attempts and elapsed time and supplies the vendor's
 * requested wait (already parsed, e.g. with parseRetryAfter).
 */

export interface RetryPolicy {
  /** Total attempts allowed, including the first. */
  max_attempts: number;
  /** Budget for the whole delivery, measured from the start of the first attempt. */
  max_elapsed_ms: number;
  /** Backoff before the second attempt; multiplied by `multiplier` for each later one. */
  base_delay_ms: number;
  /** Growth of the backoff from one attempt to the next. */
  multiplier: number;
  /** Ceiling on the computed backoff (before jitter). */
  max_delay_ms: number;
  /** A vendor asking us to wait longer than this is treated as "don't retry". */
  max_retry_after_ms: number;
}

/**
 * The default spreads 5 attempts over at least 30 s even at the low end of the jitter: backoffs of
 * 1, 4, 16 and 40 s (each jittered down to half at worst: 0.5 + 2 + 8 + 20 = 30.5 s), so a vendor that
 * restarts or fails over for a few seconds — or for half a minute — still gets the event, while a lone
 * blip is retried within a second. Doubling from 250 ms (the old default) spent all 5 attempts in ~3.75 s.
 * `max_elapsed_ms` leaves room for the whole schedule plus the attempts themselves (nominal 61 s).
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  max_attempts: 5,
  max_elapsed_ms: 120_000,
  base_delay_ms: 1_000,
  multiplier: 4,
  max_delay_ms: 40_000,
  max_retry_after_ms: 60_000,
};

/**
 * The shortest time `policy` spreads its attempts over when every backoff jitters to its minimum and the
 * attempts themselves take no time (a vendor refusing connections): what a brief outage must stay under.
 */
export function minimumSpreadMs(policy: RetryPolicy): number {
  let total = 0;
  for (let attempt = 1; attempt < policy.max_attempts; attempt++) {
    const d = retryDelay(policy, { attempt, elapsed_ms: total }, () => 0);
    if (d === undefined) break;
    total += d;
  }
  return total;
}

export interface RetryState {
  /** Attempts already made, >= 1. */
  attempt: number;
  /** Time since the first attempt started. */
  elapsed_ms: number;
  /** The vendor's requested wait, from a header or body. */
  retry_after_ms?: number;
}

/** Clamp a policy number: NaN/negative become 0 so a bad config can't produce NaN delays. */
function nonNegative(n: number): number {
  return Number.isNaN(n) || n < 0 ? 0 : n;
}

/**
 * ms to wait before the next attempt, or undefined when the policy says give up.
 *
 * Jitter: "equal jitter" — delay = d/2 + random·d/2 where d = min(base·multiplier^(attempt-1), max_delay).
 * Chosen over full jitter (random·d) because it spreads retries from many workers apart while
 * never collapsing to ~0 ms, which would hammer a vendor that just told us it is struggling.
 *
 * Input hygiene: a NaN attempt or elapsed_ms gives up (we can't prove we're within budget, and
 * retrying on corrupt bookkeeping risks a retry loop); negative values clamp to their floor
 * (attempt 1, elapsed 0) since they mean clock skew or an off-by-one, not an exhausted budget.
 * A negative or NaN retry_after_ms is ignored and backoff applies.
 */
export function retryDelay(
  policy: RetryPolicy,
  state: RetryState,
  random: () => number = Math.random,
): number | undefined {
  if (Number.isNaN(state.attempt) || Number.isNaN(state.elapsed_ms)) return undefined;
  const attempt = Math.max(1, Math.floor(state.attempt));
  const elapsed = Math.max(0, state.elapsed_ms);

  if (attempt >= policy.max_attempts || Number.isNaN(policy.max_attempts)) return undefined;

  let delay: number;
  const retryAfter = state.retry_after_ms;
  if (retryAfter !== undefined && Number.isFinite(retryAfter) && retryAfter >= 0) {
    // The vendor knows its own recovery time better than our guess; but a very long wait means
    // the event would be stale (or the worker tied up), so give up instead — as got does.
    if (retryAfter > nonNegative(policy.max_retry_after_ms)) return undefined;
    delay = Math.ceil(retryAfter);
  } else {
    // 2 ** large exponents reaches Infinity, which Math.min caps — no overflow issue.
    const growth = Number.isFinite(policy.multiplier) && policy.multiplier >= 1 ? policy.multiplier : 2;
    const exp = nonNegative(policy.base_delay_ms) * growth ** (attempt - 1);
    const capped = Math.min(exp, nonNegative(policy.max_delay_ms));
    let r = random();
    // A misbehaving random source must not push the delay outside [d/2, d].
    if (!(r >= 0)) r = 0;
    if (r > 1) r = 1;
    // At least 1 ms: a zero backoff would be an immediate retry storm.
    delay = Math.max(1, Math.ceil(capped / 2 + (r * capped) / 2));
  }

  // Don't start an attempt that would begin after the delivery's budget is spent.
  if (elapsed + delay > nonNegative(policy.max_elapsed_ms)) return undefined;
  return delay;
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const LONG_DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

// The three HTTP-date forms of RFC 9110 §5.6.7. We parse them ourselves rather than with
// Date.parse, which accepts nearly anything ("5", "foo 1") and would turn garbage into a date.
const IMF_FIXDATE = /^([a-z]{3}), (\d{2}) ([a-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const RFC850_DATE = /^([a-z]{6,9}), (\d{2})-([a-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) gmt$/i;
const ASCTIME_DATE = /^([a-z]{3}) ([a-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/i;

/** Epoch ms for validated date parts, or undefined if they don't form a real instant (e.g. Feb 30). */
function utc(year: number, monthName: string, day: number, h: number, m: number, s: number): number | undefined {
  const month = MONTHS.indexOf(monthName.toLowerCase());
  if (month < 0) return undefined;
  const t = Date.UTC(year, month, day, h, m, s);
  const d = new Date(t);
  // Round-trip check rejects out-of-range fields that Date.UTC would silently roll over.
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month || d.getUTCDate() !== day) return undefined;
  if (d.getUTCHours() !== h || d.getUTCMinutes() !== m || d.getUTCSeconds() !== s) return undefined;
  return t;
}

function parseHttpDate(text: string, now: number): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, wd, dd, mon, yyyy, hh, mi, ss] = match as unknown as string[];
    if (!DAYS.includes(wd!.toLowerCase())) return undefined;
    return utc(Number(yyyy), mon!, Number(dd), Number(hh), Number(mi), Number(ss));
  }
  match = RFC850_DATE.exec(text);
  if (match) {
    const [, wd, dd, mon, yy, hh, mi, ss] = match as unknown as string[];
    if (!LONG_DAYS.includes(wd!.toLowerCase())) return undefined;
    // RFC 9110: a two-digit year more than 50 years in the future means the previous century.
    const nowYear = new Date(Number.isFinite(now) ? now : 0).getUTCFullYear();
    let year = Math.floor(nowYear / 100) * 100 + Number(yy);
    if (year > nowYear + 50) year -= 100;
    return utc(year, mon!, Number(dd), Number(hh), Number(mi), Number(ss));
  }
  match = ASCTIME_DATE.exec(text);
  if (match) {
    const [, wd, mon, dd, hh, mi, ss, yyyy] = match as unknown as string[];
    if (!DAYS.includes(wd!.toLowerCase())) return undefined;
    return utc(Number(yyyy), mon!, Number(dd!.trim()), Number(hh), Number(mi), Number(ss));
  }
  return undefined;
}

/**
 * Parse a Retry-After header: delta-seconds or an HTTP date, relative to now (ms).
 * Garbage or negative → undefined.
 *
 * - An array (repeated header) uses the first value: duplicates are a vendor bug, and the first is
 *   what most HTTP stacks expose as "the" header.
 * - Fractional seconds ("1.5") are accepted although RFC 9110 says integers: some APIs send them and
 *   rejecting would fall back to a (possibly shorter) backoff than the vendor asked for.
 * - A date already in the past yields undefined (not 0): it usually means clock skew, and the
 *   caller's backoff is a safer wait than retrying immediately.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (typeof raw !== 'string') return undefined;
  const text = raw.trim();
  if (text === '') return undefined;

  if (/^\d+(\.\d+)?$/.test(text)) {
    const ms = Math.ceil(Number(text) * 1000);
    return Number.isFinite(ms) ? ms : undefined;
  }

  if (!Number.isFinite(now)) return undefined;
  const at = parseHttpDate(text, now);
  if (at === undefined) return undefined;
  const delta = at - now;
  return delta >= 0 ? delta : undefined;
}

/**
 * A vendor's own rate-limit header, as the spec names it: `seconds` to wait, or `epoch` — the Unix time
 * (seconds) at which the limit resets. Returns ms to wait, or undefined when the value is not a number.
 * A reset time already past means no wait (0).
 */
export function parseNamedRetryHeader(value: string | string[] | undefined, format: 'seconds' | 'epoch', now: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (typeof raw !== 'string' || !/^\s*\d+(\.\d+)?\s*$/.test(raw)) return undefined;
  const n = Number(raw);
  if (format === 'seconds') return Math.ceil(n * 1000);
  if (!Number.isFinite(now)) return undefined;
  return Math.max(0, Math.ceil(n * 1000 - now));
}
