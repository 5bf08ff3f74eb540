import { describe, expect, it } from 'vitest';
import { decideAfterAttempt, DEFAULT_QUEUE_RETRY_POLICY, queueBackoff } from '../../engine/policy/queue-retry.js';

const HOUR = 3_600_000;

describe('queue retry policy', () => {
  it('spreads the default 5 attempts over about 24 hours', () => {
    const mid = () => 0.5;
    const waits = [1, 2, 3, 4].map((a) => queueBackoff(DEFAULT_QUEUE_RETRY_POLICY, a, mid));
    expect(waits).toEqual([1.6 * HOUR, 3.2 * HOUR, 6.4 * HOUR, 12.8 * HOUR]);
    expect(waits.reduce((a, b) => a + b) / HOUR).toBeCloseTo(24, 5);
    // ±10% jitter, never more.
    expect(queueBackoff(DEFAULT_QUEUE_RETRY_POLICY, 1, () => 0)).toBe(Math.round(1.6 * HOUR * 0.9));
    expect(queueBackoff(DEFAULT_QUEUE_RETRY_POLICY, 1, () => 1)).toBe(Math.round(1.6 * HOUR * 1.1));
    expect(queueBackoff(DEFAULT_QUEUE_RETRY_POLICY, 1, () => Number.NaN)).toBe(Math.round(1.6 * HOUR * 0.9));
  });

  it('caps one wait and never returns less than 1 ms', () => {
    expect(queueBackoff({ max_attempts: 20, backoff_ms: HOUR, max_backoff_ms: 2 * HOUR }, 10, () => 0.5)).toBe(2 * HOUR);
    expect(queueBackoff({ max_attempts: 5, backoff_ms: 0, max_backoff_ms: 0 }, 1)).toBe(1);
    expect(queueBackoff({ max_attempts: 5, backoff_ms: 100, max_backoff_ms: HOUR }, Number.NaN, () => 0.5)).toBe(100);
  });

  it('decides: done, retry while attempts remain, dead letter for permanent failures and when attempts run out', () => {
    const p = { max_attempts: 3, backoff_ms: 100, max_backoff_ms: 10_000 };
    expect(decideAfterAttempt(p, 1, { status: 'delivered' })).toEqual({ kind: 'done' });
    expect(decideAfterAttempt(p, 3, { status: 'skipped' })).toEqual({ kind: 'done' });
    expect(decideAfterAttempt(p, 1, { status: 'failed', retryable: true }, () => 0.5)).toEqual({ kind: 'retry', delay_ms: 100 });
    expect(decideAfterAttempt(p, 2, { status: 'failed', retryable: true }, () => 0.5)).toEqual({ kind: 'retry', delay_ms: 200 });
    expect(decideAfterAttempt(p, 3, { status: 'failed', retryable: true })).toEqual({ kind: 'dead', why: 'attempts_exhausted' });
    expect(decideAfterAttempt(p, 1, { status: 'failed', retryable: false })).toEqual({ kind: 'dead', why: 'permanent' });
    expect(decideAfterAttempt(p, 1, { status: 'failed' })).toEqual({ kind: 'dead', why: 'permanent' });
    expect(decideAfterAttempt({ ...p, max_attempts: 1 }, 1, { status: 'failed', retryable: true })).toEqual({ kind: 'dead', why: 'attempts_exhausted' });
  });
});
