import { describe, expect, it } from 'vitest';
import { refreshAt, refreshMarginMs } from '../../engine/policy/token-expiry.js';

describe('refreshMarginMs', () => {
  it.each([
    ['1079 s token: 10% of lifetime', 1_079_000, 107_900],
    ['2 s token: half its life, so it is still used', 2_000, 1_000],
    ['500 ms token: half its life', 500, 250],
    ['5 s token: 1 s floor beats 10%', 5_000, 1_000],
    ['20 s token: 10%', 20_000, 2_000],
    ['60 s token: 10%', 60_000, 6_000],
    ['1 h token: capped at 5 min', 3_600_000, 300_000],
    ['1 day token: capped at 5 min', 86_400_000, 300_000],
    ['zero', 0, 0],
    ['negative', -1000, 0],
    ['NaN', NaN, 0],
  ])('%s', (_name, lifetime, expected) => {
    expect(refreshMarginMs(lifetime)).toBe(expected);
  });

  it('always leaves some usable lifetime', () => {
    for (const lifetime of [1, 10, 999, 2_000, 10_000, 1_079_000, 7_200_000]) {
      expect(refreshMarginMs(lifetime)).toBeLessThan(lifetime);
    }
  });
});

describe('refreshAt', () => {
  const t0 = 1_700_000_000_000;
  it.each([
    ['1079 s', 1079, t0 + 1_079_000 - 107_900],
    ['2 s: still usable for 1 s', 2, t0 + 1_000],
    ['3600 s', 3600, t0 + 3_600_000 - 300_000],
    ['zero lifetime: never reuse', 0, t0],
    ['negative lifetime: never reuse', -60, t0],
    ['NaN lifetime: never reuse', NaN, t0],
    ['infinite lifetime: never reuse', Infinity, t0],
  ])('%s', (_name, lifetime_s, expected) => {
    expect(refreshAt(t0, lifetime_s)).toBe(expected);
  });

  it('treats a non-finite obtained_at as already expired', () => {
    expect(refreshAt(NaN, 3600)).toBe(0);
  });
});
