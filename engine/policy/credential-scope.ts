/**
 * The credential scope of an integration record: which vendor account its events reach. A queued event
 * carries its record's scope fingerprint, so a worker delivers it only with a record that reaches the
 * same account: an event enqueued for one tenant can never go out with another tenant's token.
 *
 * The scope is the vendor, the record's `source_id` and the values of every auth stage's `cache_key`
 * fields (what the spec declares a token is for). Secrets are not part of it, so a rotated secret keeps
 * the scope (queued events go out with the new secret); another account, source or client changes it.
 */
import { createHash } from 'node:crypto';

export function credentialScopeFingerprint(
  vendor: string,
  record: { source_id: string; config: Record<string, unknown> },
  cacheKeyFields: readonly string[],
): string {
  const fields = [...new Set(cacheKeyFields)].sort();
  // "123" and 123 name the same account, as rate-limit scopes compare them.
  const values = fields.map((f) => {
    const v = record.config[f];
    return v === undefined || v === null ? null : typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
  return createHash('sha256').update(JSON.stringify(['scope/v1', vendor, record.source_id, fields, values])).digest('hex').slice(0, 32);
}
