/**
 * Which declared error rule applies to a failed exchange. Pure: the facts of the failure in, the first
 * matching rule out (specs list specific rules first; the defaults every spec inherits come last).
 */
import type { CompiledRule } from '../compile/spec.js';

export interface FailureFacts {
  /** HTTP status, when the vendor answered. */
  status?: number;
  /** Network error code (ECONNRESET, ETIMEDOUT, ...), when it did not. */
  network?: string;
  vendor_code?: string | number;
  /** Vendor message, or the raw body when the spec extracts none. */
  message?: string;
}

export function ruleMatches(rule: CompiledRule, f: FailureFacts): boolean {
  if (rule.network !== undefined) {
    if (f.network === undefined) return false;
    if (rule.network !== true && !rule.network.has(f.network)) return false;
  }
  if (rule.status && (f.status === undefined || !rule.status(f.status))) return false;
  if (rule.codes && (f.vendor_code === undefined || !rule.codes.has(String(f.vendor_code)))) return false;
  if (rule.messageContains !== undefined && !(f.message ?? '').toLowerCase().includes(rule.messageContains)) return false;
  // A rule that names no network condition is about vendor answers only.
  if (rule.network === undefined && f.status === undefined) return false;
  return true;
}

export function matchRule(rules: readonly CompiledRule[], f: FailureFacts): CompiledRule | undefined {
  return rules.find((r) => ruleMatches(r, f));
}
