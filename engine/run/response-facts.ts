/** What a vendor's answer says: its JSON body, and the failure facts the stage's vendor_error expressions read. */
import type { Bindings } from '../compile/expression.js';
import type { CompiledVendorError } from '../compile/spec.js';
import type { FailureFacts } from '../policy/rules.js';
import { challengeValue } from '../policy/challenge.js';

export function parseJson(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function evalOptional(expr: CompiledVendorError['code'], input: unknown, bindings: Bindings): Promise<unknown> {
  if (!expr) return undefined;
  try {
    const v = expr.evaluate(input, bindings);
    return v instanceof Promise ? await v : v;
  } catch {
    return undefined;
  }
}

/** Facts about a vendor answer that is not a success, using the stage's vendor_error expressions. */
export async function responseFacts(
  status: number,
  body: string | undefined,
  vendorError: CompiledVendorError,
  bindings: Bindings,
  headers?: Record<string, string | string[] | undefined>,
): Promise<{ facts: FailureFacts; retry_after_s?: number }> {
  const json = parseJson(body);
  // `$headers`: the answer's headers by lowercase name (a rate-limit reset, a request id); `$challenge`: its
  // parsed WWW-Authenticate challenge (RFC 6750 §3: `$challenge.error` is `invalid_token`...).
  if (headers) {
    const challenge = headers['www-authenticate'] === undefined ? undefined : challengeValue(headers['www-authenticate']);
    bindings = challenge ? { ...bindings, headers, challenge } : { ...bindings, headers };
  }
  const code = await evalOptional(vendorError.code, json, bindings);
  const message = await evalOptional(vendorError.message, json, bindings);
  const retryAfter = await evalOptional(vendorError.retryAfter, json, bindings);
  const facts: FailureFacts = { status };
  if (typeof code === 'string' || typeof code === 'number') facts.vendor_code = code;
  if (typeof message === 'string') facts.message = message;
  // Bounded, not cut to size: the caller redacts secrets first, then cuts (redactAndCut).
  else if (body) facts.message = body.slice(0, 65_536);
  const out: { facts: FailureFacts; retry_after_s?: number } = { facts };
  if (typeof retryAfter === 'number' && Number.isFinite(retryAfter) && retryAfter >= 0) out.retry_after_s = retryAfter;
  return out;
}
