/**
 * Scrubbing secret values (API keys, tokens, passwords) out of text and data before it is logged,
 * stored or shown, wherever it came from (error messages, echoed request bodies, vendor responses).
 */

import { inspect } from 'node:util';

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
 * The base64 text that encodes `secret` wherever it sits in a longer encoded string (as in an HTTP Basic
 * `base64(client_id:client_secret)` a vendor echoes back). Base64 works in 3-byte groups, so a secret
 * starting at byte offset 0, 1 or 2 of a group encodes differently: for each, the groups that hold only
 * the secret's bytes give a fixed run of characters. Redacting that run leaves at most the few
 * characters that mix in neighbouring bytes.
 */
export function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const out = new Set<string>();
  for (let skip = 0; skip < 3; skip++) {
    const whole = bytes.subarray(skip, skip + Math.floor((bytes.length - skip) / 3) * 3);
    if (whole.length < 3) continue;
    out.add(whole.toString('base64'));
    out.add(whole.toString('base64url'));
  }
  return [...out].filter((f) => f.length >= MIN_SECRET_LENGTH);
}

/** The ways a secret turns up in text: as is, URL- and form-encoded, JSON-escaped, base64 inside a longer value. */
export function secretForms(secret: string): string[] {
  const encoded = [encodeURIComponent(secret), new URLSearchParams({ s: secret }).toString().slice(2)];
  // Percent-escapes may come back with lower-case hex (%2f) from a vendor that re-encodes.
  const lower = encoded.map((e) => e.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()));
  const forms = new Set([secret, ...encoded, ...lower, JSON.stringify(secret).slice(1, -1)]);
  for (const f of base64Forms(secret)) forms.add(f);
  return [...forms];
}

/**
 * Redact, then cut to `max` characters: cutting first could split a secret and leave its prefix, which
 * no longer matches, in plain sight.
 */
export function redactAndCut(text: string, redact: (text: string) => string, max: number): string {
  const r = redact(text);
  return r.length > max ? `${r.slice(0, max)}…` : r;
}

/**
 * Build a function replacing every occurrence of any secret value, in any of its forms (secretForms),
 * with `[redacted]`.
 * Empty, missing and < 4-character values are ignored (see MIN_SECRET_LENGTH).
 *
 * All secrets are matched in one regex pass, longest first, so a secret that contains another is
 * redacted whole (not left half-visible), and a replacement is never re-scanned — sequential
 * replaces could match a secret inside an earlier "[redacted]" marker.
 */
export function redactor(secrets: Iterable<string | undefined | null>): (text: string) => string {
  const unique = new Set<string>();
  for (const s of secrets) {
    if (typeof s === 'string' && s.length >= MIN_SECRET_LENGTH) for (const form of secretForms(s)) unique.add(form);
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

/**
 * Make instances of a class that holds secrets (a record's config, tokens) show only `summary` when
 * printed with util.inspect / console.log, or serialized with JSON.stringify: its fields never appear.
 */
export function concealWhenPrinted<T extends object>(cls: { prototype: T; name: string }, summary: (instance: T) => Record<string, unknown>): void {
  Object.defineProperty(cls.prototype, inspect.custom, {
    value(this: T, _depth: number, options: { stylize?: unknown }, inspectFn: typeof inspect = inspect): string {
      return `${cls.name} ${inspectFn(summary(this), options as never)}`;
    },
    configurable: true,
    writable: true,
  });
  Object.defineProperty(cls.prototype, 'toJSON', {
    value(this: T) {
      return summary(this);
    },
    configurable: true,
    writable: true,
  });
}
