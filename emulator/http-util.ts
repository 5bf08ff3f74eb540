import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

export interface BodyReadResult {
  /** The body decoded as UTF-8; '' when it was larger than the storage cap. */
  text: string;
  /** Bytes actually received (counted even when not stored). */
  bytes: number;
  /** True when the body exceeded the cap and was drained without being stored. */
  truncated: boolean;
}

/**
 * Read a request body fully. Bytes beyond `cap` are drained (so the client still gets an answer) but not
 * kept in memory.
 */
export async function readBody(req: IncomingMessage, cap: number): Promise<BodyReadResult> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  let stored = 0;
  let truncated = false;
  for await (const chunk of req) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    bytes += buf.length;
    if (truncated) continue;
    if (stored + buf.length > cap) {
      truncated = true;
      chunks.length = 0;
      stored = 0;
      continue;
    }
    chunks.push(buf);
    stored += buf.length;
  }
  return { text: truncated ? '' : Buffer.concat(chunks).toString('utf8'), bytes, truncated };
}

export type HostKind = 'auth' | 'rest' | 'soap';

export interface HostInfo {
  /** First DNS label, lower-cased; null for IP literals, `localhost` or a missing header. */
  tenant: string | null;
  /** Second DNS label when it is one of Marketing Cloud's service names. */
  kind: HostKind | null;
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value[0];
  return value;
}

/** Parse a Host / X-Forwarded-Host value (`mc-abc.auth.marketingcloudapis.com:443`, possibly a list). */
export function parseHost(raw: string | undefined): HostInfo {
  if (!raw) return { tenant: null, kind: null };
  const first = (raw.split(',')[0] ?? '').trim().toLowerCase();
  if (!first || first.startsWith('[')) return { tenant: null, kind: null }; // empty or IPv6 literal
  const hostname = first.split(':')[0] ?? '';
  if (!hostname || isIP(hostname) !== 0 || hostname === 'localhost') return { tenant: null, kind: null };
  const labels = hostname.split('.');
  const tenant = labels[0] || null;
  const second = labels[1];
  const kind: HostKind | null = second === 'auth' || second === 'rest' || second === 'soap' ? second : null;
  return { tenant, kind };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Property lookup that first tries the exact name, then a case-insensitive match. Marketing Cloud's REST
 * APIs are .NET services that bind JSON property names case-insensitively (`ContactKey` / `contactKey`).
 */
export function prop(obj: Record<string, unknown>, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, name)) return obj[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(obj)) {
    if (key.toLowerCase() === lower) return obj[key];
  }
  return undefined;
}

/** Parse a JSON text; `ok: false` when it is not valid JSON. An empty body parses to `undefined`. */
export function tryParseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

export function isFormContentType(contentType: string | undefined): boolean {
  return !!contentType && contentType.toLowerCase().includes('application/x-www-form-urlencoded');
}

export function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  return out;
}

/** Positive integer from a query value, with a default and an upper bound. */
export function intParam(value: string | null, def: number, max: number): number {
  if (value === null || value.trim() === '') return def;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) return def;
  return Math.min(n, max);
}
