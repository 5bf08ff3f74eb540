/**
 * Queue retry policy: what the fleet does with an event after one queue attempt (one
 * `Integration.deliver`, with the engine's own short in-process retries inside it).
 *
 * Pure: no clock, no Redis. The worker supplies the attempt number and the outcome.
 */

export interface QueueRetryPolicy {
  /** Queue attempts in total, the first included. */
  max_attempts: number;
  /** Wait before the second attempt; doubles for each later one. */
  backoff_ms: number;
  /** Ceiling on one wait. */
  max_backoff_ms: number;
}

/**
 * 5 attempts, waits of 96 min, 3.2 h, 6.4 h and 12.8 h: the fifth attempt comes about 24 hours after the
 * first, the platform's promise ("up to 5 attempts with exponential backoff over 24 hours").
 */
export const DEFAULT_QUEUE_RETRY_POLICY: QueueRetryPolicy = {
  max_attempts: 5,
  backoff_ms: 96 * 60_000,
  max_backoff_ms: 24 * 3_600_000,
};

/**
 * ms to wait before queue attempt `attempt + 1`, after `attempt` attempts failed.
 *
 * Jitter ±10%: events that failed together (a vendor outage) come back spread out rather than as one
 * burst, while the total stays "about 24 hours" as promised. At least 1 ms.
 */
export function queueBackoff(policy: QueueRetryPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(Number.isFinite(attempt) ? attempt : 1));
  const base = Math.min(Math.max(0, policy.backoff_ms) * 2 ** (n - 1), Math.max(0, policy.max_backoff_ms));
  let r = random();
  if (!(r >= 0)) r = 0;
  if (r > 1) r = 1;
  return Math.max(1, Math.round(base * (0.9 + 0.2 * r)));
}

export type QueueDecision =
  /** Done: delivered or skipped. */
  | { kind: 'done' }
  /** Failed, but another attempt may succeed: schedule it. */
  | { kind: 'retry'; delay_ms: number }
  /** Failed for good (permanent, or out of attempts): into the dead-letter queue. */
  | { kind: 'dead'; why: 'permanent' | 'attempts_exhausted' };

/** The fate of an event after queue attempt `attempt` (1-based) ended with this outcome. */
export function decideAfterAttempt(
  policy: QueueRetryPolicy,
  attempt: number,
  outcome: { status: 'delivered' | 'skipped' | 'failed'; retryable?: boolean },
  random: () => number = Math.random,
): QueueDecision {
  if (outcome.status !== 'failed') return { kind: 'done' };
  if (outcome.retryable !== true) return { kind: 'dead', why: 'permanent' };
  if (!(attempt < policy.max_attempts)) return { kind: 'dead', why: 'attempts_exhausted' };
  return { kind: 'retry', delay_ms: queueBackoff(policy, attempt, random) };
}
