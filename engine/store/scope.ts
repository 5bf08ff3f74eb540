/**
 * Which rate-limit budget a record draws from. The spec's `rate_limit.scope` names the config fields the
 * vendor counts by; records agreeing on them (and on the hosts, so two vendors never collide, and on the
 * endpoint override) share one budget. Without a declared scope the budget is the record's own.
 */
import type { CompiledSpec } from '../compile/spec.js';

/** The budget's key (an opaque string; stores hash it). */
export function rateLimitScope(spec: CompiledSpec, record: { id?: string; name: string; config: Record<string, unknown> }, endpoint: string | undefined): string {
  const fields = spec.rateLimit.scope;
  // The record's own budget is keyed by its stable id (a name is a label two tenants may share).
  if (fields.length === 0) return JSON.stringify(record.id !== undefined ? ['record-id', spec.vendor, record.id, endpoint ?? ''] : ['record', spec.vendor, record.name, endpoint ?? '']);
  // "123" and 123 name the same account: values compare as text.
  const values = fields.map((f) => {
    const v = record.config[f];
    return v === undefined || v === null ? null : typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
  return JSON.stringify(['scope', [...spec.allowedHosts].sort(), fields, values, endpoint ?? '']);
}

/** The record's own limit, else the spec's default, else none. */
export function requestsPerMinute(spec: CompiledSpec, record: { rate_limit?: { requests_per_minute: number } }): number | undefined {
  return record.rate_limit?.requests_per_minute ?? spec.rateLimit.requests_per_minute;
}
