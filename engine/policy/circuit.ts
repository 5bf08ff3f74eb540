/**
 * A circuit breaker per integration: a vendor in outage (repeated retryable failures: no answer, 5xx,
 * 429) is not sent every attempt of every event. After `failures` such outcomes in a row the circuit
 * opens: the worker takes no event of that integration (they wait on the queue, nothing is failed) for
 * `open_ms`, then lets one probe through (half open). The probe's success closes it; another outage
 * failure opens it again for twice as long, up to `max_open_ms`.
 */
import type { Outcome } from '../run/outcome.js';

export interface CircuitPolicy {
  /** Outage failures in a row that open the circuit. */
  failures: number;
  /** First open period. */
  open_ms: number;
  /** Longest open period (it doubles each time a probe fails). */
  max_open_ms: number;
}

export const DEFAULT_CIRCUIT_POLICY: CircuitPolicy = { failures: 5, open_ms: 30_000, max_open_ms: 300_000 };

export interface CircuitState {
  state: 'closed' | 'open' | 'half_open';
  /** Outage failures in a row. */
  failures: number;
  /** Times opened in a row (the open period doubles). */
  opened: number;
  /** When an open circuit lets a probe through (epoch ms). */
  until: number;
}

export const CLOSED: CircuitState = { state: 'closed', failures: 0, opened: 0, until: 0 };

/** Does this outcome say the vendor is unreachable or failing as a whole (not: this event is bad)? */
export function isOutage(o: Pick<Outcome, 'status' | 'reason' | 'retryable' | 'http_status'>): boolean {
  if (o.status !== 'failed' || o.retryable !== true) return false;
  if (o.reason === 'network_error') return true;
  if (o.reason === 'http_error' || o.reason === 'auth_failed') return o.http_status === undefined || o.http_status >= 500 || o.http_status === 429;
  return false;
}

/** The state after one outcome. */
export function circuitAfter(s: CircuitState, policy: CircuitPolicy, now: number, outage: boolean): CircuitState {
  if (!outage) return s.state === 'closed' && s.failures === 0 ? s : CLOSED;
  if (s.state === 'half_open' || (s.state === 'closed' && s.failures + 1 >= policy.failures)) {
    const opened = s.state === 'half_open' ? s.opened + 1 : 1;
    return { state: 'open', failures: s.failures + 1, opened, until: now + Math.min(policy.max_open_ms, policy.open_ms * 2 ** (opened - 1)) };
  }
  return { ...s, failures: s.failures + 1 };
}

/** How many events may be in flight now (Infinity: no limit from the circuit); opens to half open when due. */
export function circuitAllows(s: CircuitState, now: number): { state: CircuitState; max: number } {
  if (s.state === 'closed') return { state: s, max: Infinity };
  if (s.state === 'open' && now < s.until) return { state: s, max: 0 };
  return { state: s.state === 'half_open' ? s : { ...s, state: 'half_open' }, max: 1 };
}
