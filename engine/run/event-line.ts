/**
 * One line of an NDJSON event stream → one Signal event, or one clear problem. Pure and generic: no I/O,
 * no knowledge of who reads the stream. Everything a hostile or broken producer can put on a line is
 * answered here, before the event reaches a mapping:
 *
 *   - a line over the byte limit (callers streaming input should stop buffering at the limit themselves);
 *   - bytes that are not UTF-8 (decoded with a fatal decoder, never guessed);
 *   - nesting deeper than the limit (checked on the text, before JSON.parse builds anything);
 *   - text that is not JSON, or JSON that is not an object;
 *   - `__proto__`, `constructor` or `prototype` as a key at any depth;
 *   - a string or key that is not well-formed Unicode (a lone surrogate, e.g. "\ud800");
 *   - an object that is not a Signal event (eventProblems: type, event, event_id, ...).
 *
 * Messages say what is wrong and where (key path, column) but never echo a value from the line.
 */
import { eventProblems, type SignalEvent } from './event.js';

/** Default byte limit of one line: 1 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;
/** Default limit of nested objects/arrays (the top-level object is depth 1). */
export const DEFAULT_MAX_DEPTH = 64;
/** Keys refused at any depth: they are how prototype pollution gets into merged or mapped objects. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface EventLineOptions {
  /** Byte limit of the line (default DEFAULT_MAX_LINE_BYTES). */
  maxBytes?: number;
  /** Nesting limit (default DEFAULT_MAX_DEPTH). */
  maxDepth?: number;
  /**
   * Accept dead-letter envelopes: an object with a `dead_letter` key and an object `event` stands for
   * its `event` (so a dead-letter file can be fed back as input). Default false.
   */
  unwrapDeadLetter?: boolean;
}

export type EventLineResult =
  | {
      ok: true;
      event: SignalEvent;
      /** The envelope's `dead_letter` object, when the line was a dead-letter envelope. */
      deadLetter?: Record<string, unknown>;
    }
  | {
      ok: false;
      /** What is wrong, without any value from the line. */
      message: string;
      /**
       * The line as text for a dead-letter store (lossily decoded when it was not UTF-8); absent when the
       * line was over the byte limit. For a dead-letter envelope whose event is still bad, the envelope's
       * event (or its raw_line), so feeding dead letters back never nests envelopes.
       */
      raw?: string;
      /** The event's id, when the line parsed far enough to have one. */
      event_id?: string;
    };

const fatalDecoder = new TextDecoder('utf-8', { fatal: true });
const lossyDecoder = new TextDecoder('utf-8');

interface WellFormed {
  isWellFormed(): boolean;
}
const wellFormed = (s: string): boolean => (s as unknown as WellFormed).isWellFormed();

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True when the line holds nothing but spaces, tabs and carriage returns. */
export function isBlankLine(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/** Deepest nesting of objects/arrays in JSON text, stopping as soon as `limit` is exceeded. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** JSON.parse's message without the excerpt of the input it may quote, with a column when it gave a position. */
function describeJsonError(e: unknown, text: string): string {
  const msg = e instanceof Error ? e.message : String(e);
  const pos = /at position (\d+)/.exec(msg);
  // V8 quotes the input: `Unexpected token 'x', "{"a": x…" is not valid JSON` (or `, ..."…`). Keep the
  // reason only: cut at the first comma that opens a quotation, then drop the position wording.
  let reason = (msg.split(/,\s*(?:\.\.\.)?"/)[0] ?? '').replace(/\s*(?:in JSON )?at position \d+.*$/s, '').trim() || 'syntax error';
  if (reason.length > 120) reason = reason.slice(0, 120);
  if (pos?.[1] !== undefined) {
    const at = Number(pos[1]);
    // Column in the line (1-based); a pretty-printed document gets line:col.
    const before = text.slice(0, at);
    const nl = before.lastIndexOf('\n');
    const lineNo = before.split('\n').length;
    return `not valid JSON: ${reason} (at ${lineNo > 1 ? `line ${lineNo}, ` : ''}column ${at - nl})`;
  }
  return `not valid JSON: ${reason}`;
}

function pathText(path: readonly (string | number)[]): string {
  if (path.length === 0) return 'the top level';
  const text = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${wellFormed(p) ? p : JSON.stringify(p)}`)).join('');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** The first forbidden key or ill-formed string in a parsed JSON value (iterative: no recursion limit). */
export function jsonValueProblem(value: unknown): string | undefined {
  // Every event line passes here: scan without building a path per value, and only when something is
  // wrong walk again with paths for the message.
  return hasValueProblem(value) ? describeValueProblem(value) : undefined;
}

function hasValueProblem(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (!wellFormed(v)) return true;
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push(v[i]);
    } else if (isRecord(v)) {
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue;
        if (!wellFormed(k) || FORBIDDEN_KEYS.has(k)) return true;
        stack.push(v[k]);
      }
    }
  }
  return false;
}

function describeValueProblem(value: unknown): string | undefined {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (!wellFormed(v)) return `the string at ${pathText(path)} is not well-formed Unicode (lone surrogate)`;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
    } else if (isRecord(v)) {
      const keys = Object.keys(v);
      for (const k of keys) {
        if (!wellFormed(k)) return `a key in ${pathText(path)} is not well-formed Unicode (lone surrogate)`;
        if (FORBIDDEN_KEYS.has(k)) return `forbidden key '${k}' in ${pathText(path)}`;
      }
      for (let i = keys.length - 1; i >= 0; i--) stack.push({ v: v[keys[i]!], path: [...path, keys[i]!] });
    }
  }
  return undefined;
}

/**
 * Parse JSON text with the same defences as an event line (depth, forbidden keys, well-formed strings).
 * For files that are not events (e.g. integration records): the message never quotes the text.
 */
export function parseJsonSafely(text: string, opts: { maxDepth?: number } = {}): { ok: true; value: unknown } | { ok: false; message: string } {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (jsonDepthExceeds(text, maxDepth)) return { ok: false, message: `nesting deeper than ${maxDepth} levels` };
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (e) {
    return { ok: false, message: describeJsonError(e, text) };
  }
  const problem = jsonValueProblem(value);
  return problem ? { ok: false, message: problem } : { ok: true, value };
}

/** One NDJSON line (without its newline) → a Signal event, or what is wrong with it. */
export function parseEventLine(bytes: Uint8Array, opts: EventLineOptions = {}): EventLineResult {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_LINE_BYTES;
  if (bytes.length > maxBytes) return { ok: false, message: `line is ${bytes.length} bytes, over the limit of ${maxBytes} bytes` };
  let text: string;
  try {
    text = fatalDecoder.decode(bytes);
  } catch {
    return { ok: false, message: 'line is not valid UTF-8', raw: lossyDecoder.decode(bytes) };
  }
  const parsed = parseJsonSafely(text, opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : {});
  if (!parsed.ok) return { ok: false, message: parsed.message, raw: text };
  let candidate = parsed.value;
  let deadLetter: Record<string, unknown> | undefined;
  let raw = text;
  if (opts.unwrapDeadLetter && isRecord(candidate) && 'dead_letter' in candidate) {
    deadLetter = isRecord(candidate.dead_letter) ? candidate.dead_letter : {};
    if (isRecord(candidate.event)) {
      candidate = candidate.event;
      raw = JSON.stringify(candidate);
    } else {
      const rawLine = typeof candidate.raw_line === 'string' ? candidate.raw_line : undefined;
      return {
        ok: false,
        message: `dead-letter entry without an event${rawLine !== undefined ? ' (its original line did not parse: fix raw_line and feed the fixed event)' : ''}`,
        ...(rawLine !== undefined ? { raw: rawLine } : { raw: text }),
      };
    }
  }
  const problems = eventProblems(candidate);
  if (problems.length) {
    const id = isRecord(candidate) && typeof candidate.event_id === 'string' && candidate.event_id !== '' ? candidate.event_id : undefined;
    return { ok: false, message: problems.join('; '), raw, ...(id !== undefined ? { event_id: id } : {}) };
  }
  return { ok: true, event: candidate as SignalEvent, ...(deadLetter ? { deadLetter } : {}) };
}
