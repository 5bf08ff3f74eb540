import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, minimumSpreadMs, parseRetryAfter, retryDelay, type RetryPolicy } from '../../engine/policy/retry-delay.js';

/** A fixed policy for the mechanics below (the default's numbers are tested on their own). */
const P: RetryPolicy = { max_attempts: 5, max_elapsed_ms: 60_000, base_delay_ms: 250, multiplier: 2, max_delay_ms: 15_000, max_retry_after_ms: 60_000 };
const fixed = (r: number) => () => r;

describe('the default retry budget (issue 8 item 6)', () => {
  const schedule = (r: number) => {
    const delays: number[] = [];
    let elapsed = 0;
    for (let attempt = 1; ; attempt++) {
      const d = retryDelay(DEFAULT_RETRY_POLICY, { attempt, elapsed_ms: elapsed }, fixed(r));
      if (d === undefined) return delays;
      delays.push(d);
      elapsed += d;
    }
  };

  it('spreads its 5 attempts over at least 30 s even when every backoff jitters to its minimum', () => {
    expect(schedule(0)).toEqual([500, 2_000, 8_000, 20_000]);
    expect(minimumSpreadMs(DEFAULT_RETRY_POLICY)).toBeGreaterThanOrEqual(30_000);
  });

  it('fits the whole schedule at its maximum inside max_elapsed_ms, with room for the attempts themselves', () => {
    const longest = schedule(1);
    expect(longest).toEqual([1_000, 4_000, 16_000, 40_000]);
    const total = longest.reduce((a, b) => a + b, 0);
    expect(total + 4 * 10_000).toBeLessThanOrEqual(DEFAULT_RETRY_POLICY.max_elapsed_ms);
  });

  it('rides out a 3 s outage of a vendor that refuses connections: some attempt falls after it', () => {
    for (const r of [0, 0.5, 1]) {
      let t = 0;
      const times = [0, ...schedule(r).map((d) => (t += d))];
      expect(times.some((at) => at > 3_000)).toBe(true);
      expect(times).toHaveLength(5);
    }
  });

  it('retries a lone blip within a second', () => {
    expect(retryDelay(DEFAULT_RETRY_POLICY, { attempt: 1, elapsed_ms: 0 }, fixed(1))).toBeLessThanOrEqual(1_000);
  });

  it('max_elapsed_ms still caps it, and a bad multiplier falls back to doubling', () => {
    const capped = { ...DEFAULT_RETRY_POLICY, max_elapsed_ms: 5_000 };
    expect(retryDelay(capped, { attempt: 3, elapsed_ms: 2_500 }, fixed(0))).toBeUndefined();
    expect(minimumSpreadMs(capped)).toBe(2_500);
    expect(retryDelay({ ...P, multiplier: NaN }, { attempt: 3, elapsed_ms: 0 }, fixed(1))).toBe(1_000);
    expect(retryDelay({ ...P, multiplier: 0.5 }, { attempt: 3, elapsed_ms: 0 }, fixed(1))).toBe(1_000);
  });
});

describe('retryDelay', () => {
  it.each([
    // [attempt, random, expected] — equal jitter: d/2 + r*d/2, d = 250 * 2^(attempt-1)
    [1, 0, 125],
    [1, 0.999999, 250],
    [1, 0.5, 188], // 125 + 62.5, rounded up
    [2, 0, 250],
    [2, 0.5, 375],
    [3, 0, 500],
    [4, 1, 2000],
  ])('attempt %i with random %f → %i ms', (attempt, r, expected) => {
    expect(retryDelay(P, { attempt, elapsed_ms: 0 }, fixed(r))).toBe(expected);
  });

  it('keeps jitter within [d/2, d] for many random values', () => {
    for (let i = 0; i <= 100; i++) {
      const d = retryDelay(P, { attempt: 3, elapsed_ms: 0 }, fixed(i / 100));
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  it('caps the backoff at max_delay_ms even for attempt 30', () => {
    const many = { ...P, max_attempts: Infinity, max_elapsed_ms: Infinity };
    expect(retryDelay(many, { attempt: 30, elapsed_ms: 0 }, fixed(1))).toBe(15_000);
    expect(retryDelay(many, { attempt: 30, elapsed_ms: 0 }, fixed(0))).toBe(7_500);
    expect(retryDelay(many, { attempt: 5000, elapsed_ms: 0 }, fixed(1))).toBe(15_000);
  });

  it('clamps a misbehaving random source into [d/2, d]', () => {
    expect(retryDelay(P, { attempt: 2, elapsed_ms: 0 }, fixed(-5))).toBe(250);
    expect(retryDelay(P, { attempt: 2, elapsed_ms: 0 }, fixed(7))).toBe(500);
    expect(retryDelay(P, { attempt: 2, elapsed_ms: 0 }, fixed(NaN))).toBe(250);
  });

  it('never returns 0 for a backoff', () => {
    const tiny = { ...P, base_delay_ms: 0 };
    expect(retryDelay(tiny, { attempt: 1, elapsed_ms: 0 }, fixed(0))).toBe(1);
  });

  it('gives up when attempt >= max_attempts', () => {
    expect(retryDelay(P, { attempt: 4, elapsed_ms: 0 }, fixed(0))).toBeDefined();
    expect(retryDelay(P, { attempt: 5, elapsed_ms: 0 }, fixed(0))).toBeUndefined();
    expect(retryDelay(P, { attempt: 6, elapsed_ms: 0, retry_after_ms: 10 }, fixed(0))).toBeUndefined();
  });

  it('lets the vendor retry_after win over backoff', () => {
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: 7_000 }, fixed(0))).toBe(7_000);
    expect(retryDelay(P, { attempt: 4, elapsed_ms: 0, retry_after_ms: 10 }, fixed(1))).toBe(10);
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: 0 }, fixed(1))).toBe(0);
  });

  it('gives up when retry_after exceeds max_retry_after_ms', () => {
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: 60_000 }, fixed(0))).toBe(60_000);
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: 60_001 }, fixed(0))).toBeUndefined();
  });

  it('ignores a negative or NaN retry_after and backs off instead', () => {
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: -1 }, fixed(0))).toBe(125);
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 0, retry_after_ms: NaN }, fixed(0))).toBe(125);
  });

  it('gives up when the wait would overrun max_elapsed_ms', () => {
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 59_875 }, fixed(0))).toBe(125);
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 59_876 }, fixed(0))).toBeUndefined();
    expect(retryDelay(P, { attempt: 1, elapsed_ms: 30_000, retry_after_ms: 30_001 }, fixed(0))).toBeUndefined();
  });

  it.each([
    ['NaN attempt gives up', { attempt: NaN, elapsed_ms: 0 }, undefined],
    ['NaN elapsed gives up', { attempt: 1, elapsed_ms: NaN }, undefined],
    ['negative attempt clamps to 1', { attempt: -3, elapsed_ms: 0 }, 125],
    ['zero attempt clamps to 1', { attempt: 0, elapsed_ms: 0 }, 125],
    ['negative elapsed clamps to 0', { attempt: 1, elapsed_ms: -1e9 }, 125],
    ['Infinity attempt gives up', { attempt: Infinity, elapsed_ms: 0 }, undefined],
  ])('%s', (_name, state, expected) => {
    expect(retryDelay(P, state, fixed(0))).toBe(expected);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.UTC(2024, 0, 15, 12, 0, 0); // Mon, 15 Jan 2024 12:00:00 GMT

  it.each<[string, string | string[] | undefined, number | undefined]>([
    ['delta-seconds', '120', 120_000],
    ['zero', '0', 0],
    ['surrounding whitespace', '  5 ', 5_000],
    ['fractional seconds', '1.5', 1_500],
    ['first of repeated headers', ['3', '9'], 3_000],
    ['IMF-fixdate', 'Mon, 15 Jan 2024 12:00:30 GMT', 30_000],
    ['IMF-fixdate, lower case', 'mon, 15 jan 2024 12:01:00 gmt', 60_000],
    ['RFC 850 date', 'Monday, 15-Jan-24 12:00:10 GMT', 10_000],
    ['asctime date', 'Mon Jan 15 12:00:02 2024', 2_000],
    ['asctime, space-padded day', 'Fri Feb  2 12:00:00 2024', 18 * 86_400_000],
    ['date in the past', 'Mon, 15 Jan 2024 11:59:59 GMT', undefined],
    ['negative seconds', '-5', undefined],
    ['garbage', 'soon', undefined],
    ['number with trailing garbage', '10s', undefined],
    ['empty', '', undefined],
    ['missing', undefined, undefined],
    ['empty array', [], undefined],
    ['impossible date', 'Fri, 30 Feb 2024 12:00:00 GMT', undefined],
    ['bad month', 'Mon, 15 Foo 2024 12:00:00 GMT', undefined],
    ['bad weekday', 'Xyz, 15 Jan 2024 12:00:00 GMT', undefined],
    ['hour out of range', 'Mon, 15 Jan 2024 25:00:00 GMT', undefined],
    ['loose date Date.parse would accept', 'Jan 16 2024', undefined],
    ['hex', '0x10', undefined],
  ])('%s', (_name, value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });

  it('maps a two-digit RFC 850 year more than 50 years ahead to the previous century', () => {
    const at = Date.UTC(1999, 11, 31, 0, 0, 0);
    expect(parseRetryAfter('Friday, 31-Dec-99 00:00:00 GMT', at - 1000)).toBe(1000);
  });

  it('feeds retryDelay: a parsed header wins over backoff', () => {
    const retry_after_ms = parseRetryAfter('Mon, 15 Jan 2024 12:00:20 GMT', now);
    expect(retryDelay(DEFAULT_RETRY_POLICY, { attempt: 1, elapsed_ms: 0, retry_after_ms }, fixed(0))).toBe(20_000);
  });
});
