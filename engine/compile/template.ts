/**
 * Templates: literal text with `{expression}` placeholders, used for URLs and header values.
 * Parsing and rendering are pure functions so the rules are tested alone.
 *
 * - Braces nest and quoted strings inside a placeholder may contain braces (`{$join(["a","}"])}`).
 * - In URLs every value is percent-encoded: a value can fill a host label or a path segment but can
 *   never add a `/`, `?`, `#` or `@` and change where the request goes; nor make a segment `.` or `..`.
 * - In headers a value may not contain CR or LF (no header injection).
 */

import { SignalError } from '../errors.js';

/** `optional`: written `{?expr}`; an absent value leaves out the header or the query parameter it fills. */
export type TemplatePart = { text: string } | { expr: string; offset: number; optional?: true };

export class TemplateSyntaxError extends SignalError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super('template.syntax', message);
    this.name = 'TemplateSyntaxError';
  }
}

export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const ch = template[i]!;
    if (ch === '}') throw new TemplateSyntaxError("unmatched '}' in template", i);
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    const open = i;
    let depth = 1;
    let quote: string | undefined;
    i++;
    while (i < template.length && depth > 0) {
      const c = template[i]!;
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '{') depth++;
      else if (c === '}') depth--;
      i++;
    }
    if (depth > 0) throw new TemplateSyntaxError("unclosed '{' in template", open);
    // `{?expr}`: `?` cannot start a JSONata expression, so it marks the placeholder optional unambiguously.
    const optional = template[open + 1] === '?';
    const start = optional ? open + 2 : open + 1;
    const expr = template.slice(start, i - 1);
    if (!expr.trim()) throw new TemplateSyntaxError(`empty placeholder ${optional ? '{?}' : '{}'} in template`, open);
    if (text) parts.push({ text });
    text = '';
    parts.push(optional ? { expr, offset: start, optional } : { expr, offset: start });
  }
  if (text) parts.push({ text });
  return parts;
}

export type TemplateContext = 'url' | 'header';

export class TemplateValueError extends SignalError {
  constructor(message: string) {
    super('template.value', message);
    this.name = 'TemplateValueError';
  }
}

/** No value: what an optional placeholder leaves out (a required one fails the event). */
export function absent(value: unknown): boolean {
  return value === undefined || value === null || value === '';
}

/**
 * Pure: the URL rendered so far with the query parameter an absent optional placeholder was to fill taken
 * out (`?a=1&b=` -> `?a=1`, `?b=` -> `?`). The compiler checked that the placeholder is a parameter's whole value.
 */
function dropQueryParameter(out: string): string {
  const amp = out.lastIndexOf('&');
  const q = out.lastIndexOf('?');
  return amp > q ? out.slice(0, amp) : out.slice(0, q + 1);
}

/** Render one placeholder value; throws TemplateValueError for a value that cannot go there. */
export function renderValue(value: unknown, expr: string, context: TemplateContext): string {
  if (value === undefined || value === null || value === '') {
    throw new TemplateValueError(`placeholder {${expr}} has no value`);
  }
  if (typeof value === 'object') throw new TemplateValueError(`placeholder {${expr}} is not a string or number`);
  const s = String(value);
  if (context === 'url') return encodeURIComponent(s);
  if (/[\r\n\0]/.test(s)) throw new TemplateValueError(`placeholder {${expr}} contains a line break`);
  return s;
}

/** `.` or `..`, also percent-encoded (`%2e`, `.%2E`...): URL parsers resolve these, walking the path. */
const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/**
 * Refuse a path segment that placeholder values turn into a dot-segment: `/v1/{x}/events` with x = `..`
 * would go to `/events`. Values cannot contain `/`, `?` or `#` (they are encoded), so segments and the
 * path's end are where the literal text puts them.
 */
function checkDotSegments(url: string, filled: readonly { start: number; end: number; expr: string }[]): void {
  const scheme = url.indexOf('://');
  const pathStart = scheme < 0 ? 0 : url.indexOf('/', scheme + 3);
  if (pathStart < 0) return;
  let pathEnd = url.length;
  for (const c of ['?', '#']) {
    const i = url.indexOf(c, pathStart);
    if (i >= 0 && i < pathEnd) pathEnd = i;
  }
  let segStart = pathStart + 1;
  for (let i = segStart; i <= pathEnd; i++) {
    if (i < pathEnd && url[i] !== '/') continue;
    const seg = url.slice(segStart, i);
    const value = filled.find((f) => f.start < i && f.end > segStart);
    if (value && DOT_SEGMENT.test(seg)) {
      throw new TemplateValueError(`placeholder {${value.expr}} makes the path segment '${seg}', which would change the request's path`);
    }
    segStart = i + 1;
  }
}

/**
 * An origin placeholder's value: `http(s)://host[:port]` and nothing else (one trailing `/` allowed) — no
 * user info, path, query or fragment, so the value can choose the server but never smuggle in a path or
 * credentials. Returns the normalised origin; the host is then checked against allowed_hosts.
 */
export function renderOrigin(value: unknown, expr: string): string {
  if (value === undefined || value === null || value === '') throw new TemplateValueError(`placeholder {${expr}} has no value`);
  if (typeof value !== 'string') throw new TemplateValueError(`placeholder {${expr}} is an origin and must be a string`);
  let u: URL | undefined;
  try {
    u = /^https?:\/\/[^/?#@\\\s]+\/?$/i.test(value) ? new URL(value) : undefined;
  } catch {
    u = undefined;
  }
  if (!u || u.username || u.password || u.pathname !== '/' || u.search || u.hash) {
    throw new TemplateValueError(`placeholder {${expr}} must be an origin (https://host or https://host:port, nothing after it); got a value that is not`);
  }
  return u.origin;
}

/**
 * A placeholder that is the whole URL template (`{$config.token_endpoint}`): an absolute `http(s)` URL
 * with a host, and no user info or fragment. Its host is then checked against allowed_hosts, as an
 * origin's is. Returns the URL as the WHATWG parser normalises it.
 */
export function renderWholeUrl(value: unknown, expr: string): string {
  if (value === undefined || value === null || value === '') throw new TemplateValueError(`placeholder {${expr}} has no value`);
  if (typeof value !== 'string') throw new TemplateValueError(`placeholder {${expr}} is a whole URL and must be a string`);
  let u: URL | undefined;
  try {
    u = /^https?:\/\/[^/?#@\\\s]+(?:[/?][^#\s]*)?$/i.test(value) ? new URL(value) : undefined;
  } catch {
    u = undefined;
  }
  if (!u || u.username || u.password || u.hash) {
    throw new TemplateValueError(`placeholder {${expr}} must be a whole http(s) URL (https://host[:port]/path, no user info or fragment); got a value that is not`);
  }
  return u.href;
}

/** A preview's stand-in for an auth output it never fetched: `[stage.output]` or `[redacted]`. */
const STAND_IN = /^\[[A-Za-z0-9_.]+\]$/;

/**
 * `origin`: the template starts with a placeholder that yields a whole origin (see renderOrigin); 'as-is'
 * inserts a preview's stand-in (`[access.instance_url]`, for an answer never fetched) unchecked.
 */
export function renderTemplate(parts: readonly TemplatePart[], values: readonly unknown[], context: 'url', origin?: 'check' | 'as-is'): string;
export function renderTemplate(parts: readonly TemplatePart[], values: readonly unknown[], context: TemplateContext, origin?: 'check' | 'as-is'): string | undefined;
/** Undefined: a header whose optional placeholder has no value, left out. */
export function renderTemplate(parts: readonly TemplatePart[], values: readonly unknown[], context: TemplateContext, origin?: 'check' | 'as-is'): string | undefined {
  let out = '';
  let v = 0;
  let dropped = false;
  const filled: { start: number; end: number; expr: string }[] = [];
  for (const [i, part] of parts.entries()) {
    if ('text' in part) {
      // After a dropped parameter: `?b=&c=1` must read `?c=1`, and a bare trailing `?` goes too.
      const text = dropped && out.endsWith('?') ? part.text.replace(/^&/, '') : part.text;
      if (dropped && out.endsWith('?') && text.startsWith('#')) out = out.slice(0, -1);
      out += text;
      dropped = false;
    } else if ('optional' in part && absent(values[v])) {
      v++;
      if (context !== 'url') return undefined;
      out = dropQueryParameter(out);
      dropped = true;
    } else if (i === 0 && origin) {
      const value = values[v++];
      // The placeholder alone is the whole URL (a token endpoint from the record); otherwise it is the origin the path follows.
      out += origin === 'as-is' && typeof value === 'string' && STAND_IN.test(value) ? value : parts.length === 1 ? renderWholeUrl(value, part.expr) : renderOrigin(value, part.expr);
    } else {
      const start = out.length;
      out += renderValue(values[v++], part.expr, context);
      filled.push({ start, end: out.length, expr: part.expr });
    }
  }
  if (dropped && out.endsWith('?')) out = out.slice(0, -1);
  if (context === 'url') checkDotSegments(out, filled);
  return out;
}
