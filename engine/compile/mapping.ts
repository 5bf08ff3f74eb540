/**
 * Mappings: ordered objects whose leaves are expressions. Key order in the spec is key order on the
 * wire (vendors and byte-exact tests care). A `"..."` key spreads the object its expression returns at
 * that place; a leaf whose expression yields nothing (undefined) is left out.
 */
import { SignalError } from '../errors.js';
import type { Bindings, CompiledExpr } from './expression.js';
import { PLAIN_PATH_ARGS, PLAIN_PATH_PARAMS, plainPathCode } from './fast/compiler.js';

export const SPREAD_KEY = '...';

export type CompiledMapping =
  | { kind: 'const'; value: unknown }
  | { kind: 'expr'; expr: CompiledExpr; path: string }
  | { kind: 'object'; entries: { key: string; spread: boolean; node: CompiledMapping }[]; build?: Builder };

type Builder = (input: unknown, bindings: Bindings) => unknown;

export class MappingError extends SignalError {
  constructor(
    message: string,
    readonly path: string,
  ) {
    super('mapping.invalid', message);
    this.name = 'MappingError';
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Evaluation stays synchronous while every leaf answers synchronously (constants and plain paths, the
 * common case) and only turns into a promise chain from the first leaf that needs JSONata: most bodies
 * are built without allocating a promise per key.
 */
function evalNode(node: CompiledMapping, input: unknown, bindings: Bindings): unknown {
  switch (node.kind) {
    case 'const':
      return node.value;
    case 'expr':
      return node.expr.evaluate(input, bindings);
    case 'object':
      // A plain object (V8's fast path): keys naming a prototype property are refused when the spec
      // is compiled, and spread keys from data are defined, never assigned (see `put`).
      return (node.build ??= generateBuilder(node.entries))(input, bindings);
  }
}

type Entries = Extract<CompiledMapping, { kind: 'object' }>['entries'];

function put(out: Record<string, unknown>, entry: Entries[number], v: unknown): void {
  if (v === undefined) return;
  if (!entry.spread) {
    define(out, entry.key, v);
    return;
  }
  if (!isPlainObject(v)) throw new MappingError(`"${SPREAD_KEY}" must yield an object, got ${Array.isArray(v) ? 'an array' : typeof v}`, entry.key);
  for (const k of Object.keys(v)) {
    const sv = v[k];
    if (sv !== undefined) define(out, k, sv);
  }
}

/** Assigning `__proto__` on a plain object would replace its prototype: define it as plain data instead. */
function define(out: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  else out[k] = v;
}

function evalEntries(entries: Entries, from: number, out: Record<string, unknown>, input: unknown, bindings: Bindings): unknown {
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i]!;
    const v = evalNode(entry.node, input, bindings);
    if (v instanceof Promise) {
      return v.then((r: unknown) => {
        put(out, entry, r);
        return evalEntries(entries, i + 1, out, input, bindings);
      });
    }
    put(out, entry, v);
  }
  return out;
}

/**
 * One generated function per mapping object: each key is a named store in spec order, so every body
 * gets the same hidden class (V8's fast path, as for a hand-written object literal). Keys are emitted
 * as JSON string literals. At the first leaf that answers with a Promise, the rest continues in
 * `evalEntries`, in the same order.
 */
function generateBuilder(entries: Entries): Builder {
  const lines = ['const out = {};', 'let v;'];
  entries.forEach((e, i) => {
    const evaluate = `nodes[${i}].expr.evaluate(input, b)`;
    if (e.node.kind === 'expr' && e.node.expr.plain) lines.push('v = undefined;', plainPathCode(e.node.expr.plain, 'v', `v = ${evaluate};`, `leaf${i}`));
    else lines.push(`v = ${e.node.kind === 'const' ? `nodes[${i}].value` : e.node.kind === 'expr' ? evaluate : `subs[${i}](input, b)`};`);
    if (e.node.kind !== 'const') lines.push(`if (v instanceof Promise) return resume(${i}, v, out, input, b);`);
    if (e.spread) {
      // The spread of a plain object, inline; anything else (an error, `__proto__`) through put/define.
      lines.push(
        `if (v !== undefined) {`,
        `  if (v === null || typeof v !== 'object' || Array.isArray(v)) put(out, entries[${i}], v);`,
        `  else for (const k in v) { if (!hasOwn.call(v, k)) continue; const sv = v[k]; if (sv === undefined) continue; if (k === '__proto__') define(out, k, sv); else out[k] = sv; }`,
        `}`,
      );
    } else if (e.key === '__proto__') lines.push(`if (v !== undefined) put(out, entries[${i}], v);`);
    else lines.push(`if (v !== undefined) out[${JSON.stringify(e.key)}] = v;`);
  });
  lines.push('return out;');
  const resume = (i: number, p: Promise<unknown>, out: Record<string, unknown>, input: unknown, b: Bindings) =>
    p.then((r) => {
      put(out, entries[i]!, r);
      return evalEntries(entries, i + 1, out, input, b);
    });
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const subs = entries.map((e) => (e.node.kind === 'object' ? (e.node.build ??= generateBuilder(e.node.entries)) : undefined));
  const factory = new Function('nodes', 'entries', 'subs', 'put', 'define', 'resume', ...PLAIN_PATH_PARAMS, `return function build(input, b) {\n${lines.join('\n')}\n};`) as (...a: unknown[]) => Builder;
  return factory(
    entries.map((e) => e.node),
    entries,
    subs,
    put,
    define,
    resume,
    ...PLAIN_PATH_ARGS,
  );
}

/** The built value, synchronously whenever every leaf answered synchronously; else a Promise of it. */
export function evaluateMapping(node: CompiledMapping, input: unknown, bindings: Bindings): unknown | Promise<unknown> {
  return evalNode(node, input, bindings);
}

/** Path segments that could reach an object's prototype: never written. */
export const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Apply per-field overrides (`{"user_key": expr, "data.crm_id": expr}`) to a built body: an existing
 * key keeps its place, a new key is appended, and an override that yields nothing removes the key.
 * Objects along the path are copied before they are written, because a mapping may have placed the
 * event's own objects in the body: the caller's event is never modified.
 */
export function setPath(body: Record<string, unknown>, path: readonly string[], value: unknown): void {
  if (path.some((seg) => FORBIDDEN_SEGMENTS.has(seg))) throw new MappingError(`field path '${path.join('.')}' names a prototype property`, path.join('.'));
  let cur = body;
  for (const seg of path.slice(0, -1)) {
    const existing = Object.hasOwn(cur, seg) ? cur[seg] : undefined;
    if (!isPlainObject(existing) && value === undefined) return;
    const copy: Record<string, unknown> = isPlainObject(existing) ? { ...existing } : {};
    cur[seg] = copy;
    cur = copy;
  }
  const last = path[path.length - 1]!;
  if (value === undefined) delete cur[last];
  else cur[last] = value;
}
