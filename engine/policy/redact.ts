/**
 * Scrubbing secret values (API keys, tokens, passwords) out of text and data before it is logged,
 * stored or shown, wherever it came from (error messages, echoed request bodies, vendor responses).
 */

export const REDACTED = '[redacted]';

/**
 * Secrets shorter than this are not scrubbed: replacing e.g. "1" or "abc" everywhere would mangle
 * logs beyond use while protecting nothing — a value that short can be guessed anyway.
 */
const MIN_SECRET_LENGTH = 4;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Build a function replacing every occurrence of any secret value with `[redacted]`.
 * Empty, missing and < 4-character values are ignored (see MIN_SECRET_LENGTH).
 *
 * All secrets are matched in one regex pass, longest first, so a secret that contains another is
 * redacted whole (not left half-visible), and a replacement is never re-scanned — sequential
 * replaces could match a secret inside an earlier "[redacted]" marker.
 */
export function redactor(secrets: Iterable<string | undefined | null>): (text: string) => string {
  const unique = new Set<string>();
  for (const s of secrets) {
    if (typeof s === 'string' && s.length >= MIN_SECRET_LENGTH) unique.add(s);
  }
  if (unique.size === 0) return (text) => text;
  const ordered = [...unique].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(ordered.map(escapeRegExp).join('|'), 'g');
  // Function replacer: a string replacement would interpret `$&`-style patterns (not in ours, but
  // this keeps the marker literal if it ever changes).
  return (text) => text.replace(pattern, () => REDACTED);
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Deep-copy a JSON-like value, passing every string value through `redact`.
 * Object keys are left alone (they are field names, not data). Arrays and plain objects are copied;
 * other objects (Date, Buffer, class instances) are returned as-is — serialize them first if they
 * may hold secrets. Shared and cyclic references are preserved rather than recursed forever.
 */
export function redactValue(value: unknown, redact: (text: string) => string): unknown {
  const seen = new Map<object, unknown>();
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v);
    if (v === null || typeof v !== 'object') return v;
    const done = seen.get(v);
    if (done !== undefined) return done;
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      seen.set(v, out);
      for (const item of v) out.push(walk(item));
      return out;
    }
    if (!isPlainObject(v)) return v;
    const out: Record<string, unknown> = {};
    seen.set(v, out);
    for (const [k, item] of Object.entries(v)) {
      // defineProperty, not assignment: an own "__proto__" key (possible in parsed JSON) must stay
      // data, not replace the copy's prototype.
      Object.defineProperty(out, k, { value: walk(item), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  return walk(value);
}
