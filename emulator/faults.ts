/** Fault injection: a seeded PRNG decides, per eligible request, which fault (if any) it gets. */
import { mulberry32 } from './prng.js';
import { RATE_LIMIT_DOC_URL } from './constants.js';
import { FAULT_ORDER, json, restError, type EmulatorState, type ExclusiveFault, type FaultDecision, type HandlerResult } from './state.js';
import type { FaultOptions, FaultTarget } from './types.js';

const ALL_TARGETS: FaultTarget[] = ['token', 'events', 'batch', 'rows'];

function validateRate(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new RangeError(`faults.${name} must be between 0 and 1`);
}

export function setFaults(s: EmulatorState, f: FaultOptions | undefined): void {
  const next = f ?? {};
  for (const name of [...FAULT_ORDER, 'slow', 'token_early_death'] as const) validateRate(name, next[name]);
  s.faults = { ...next };
  s.rng = mulberry32(next.seed ?? 1);
  s.faultTargets = new Set(next.apply_to ?? ALL_TARGETS);
}

export function decideFaults(s: EmulatorState, category: FaultTarget | null): FaultDecision {
  const decision: FaultDecision = { exclusive: null, slow: false, earlyDeath: false };
  if (category === null || !s.faultTargets.has(category)) return decision;
  for (const name of FAULT_ORDER) {
    const rate = s.faults[name] ?? 0;
    if (rate <= 0) continue;
    const hit = s.rng() < rate;
    if (hit && decision.exclusive === null) decision.exclusive = name;
  }
  if ((s.faults.slow ?? 0) > 0 && s.rng() < (s.faults.slow ?? 0)) decision.slow = true;
  if (category === 'token' && (s.faults.token_early_death ?? 0) > 0 && s.rng() < (s.faults.token_early_death ?? 0)) {
    decision.earlyDeath = true;
  }
  return decision;
}

export function preFaultResult(s: EmulatorState, kind: ExclusiveFault): HandlerResult | null {
  switch (kind) {
    case 'rate_limit_with_retry_after': {
      s.stats.rate_limited++;
      const n = s.faults.retry_after_seconds ?? 1;
      return json(
        429,
        { message: 'Rate limit exceeded', errorcode: 50100, retryAfter: n, documentation: RATE_LIMIT_DOC_URL },
        { 'retry-after': String(n) },
      );
    }
    case 'rate_limit_blocked':
      s.stats.rate_limited++;
      return json(429, {
        message: 'Your requests are temporarily blocked.',
        errorcode: 50200,
        documentation: RATE_LIMIT_DOC_URL,
      });
    case 'unavailable':
      s.stats.unavailable++;
      return json(503, restError('Service Unavailable', 503));
    case 'server_error':
      s.stats.server_errors++;
      return json(500, restError('An internal server error occurred.', 500));
    default:
      return null;
  }
}
