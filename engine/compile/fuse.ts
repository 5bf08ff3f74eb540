/**
 * A preset event's whole body as one generated function: the event's field mapping, then the send
 * body with `$fields` in scope, nested objects inline, each shared path prefix (`properties`) read once,
 * and a `"...": $fields` spread written key by key from the fields just computed. It gives exactly what
 * evaluating the two mappings one after the other gives (compile/mapping.ts, the reference): the same
 * keys in the same order, the same values, the same fallbacks to the full evaluator.
 *
 * The send stage's checks can run inside it too (when the record overrides no field).
 *
 * It answers synchronously or not at all: where any leaf answers with a Promise (the interpreter had to
 * run), it returns FUSE_BAIL and the caller builds the body the general way, from the start.
 */
import type { Bindings, CompiledExpr } from './expression.js';
import { PLAIN_PATH_ARGS, PLAIN_PATH_PARAMS, type PlainPath } from './fast/compiler.js';
import type { CompiledMapping } from './mapping.js';

export const FUSE_BAIL: unique symbol = Symbol('fuse.bail');

export interface FusedBody {
  body: Record<string, unknown>;
  fields: Record<string, unknown>;
  /** The bindings the body was built with (`config`, `event`, `fields`): the send checks use them too. */
  bindings: Bindings;
}
export type FusedBuilder = (event: unknown, config: unknown) => FusedBody | typeof FUSE_BAIL;

type ObjectNode = Extract<CompiledMapping, { kind: 'object' }>;

/** The send stage's checks, run on the built body inside the fused function; `fail(i)` throws check i's error. */
export interface FusedChecks {
  exprs: readonly CompiledExpr[];
  fail: (index: number) => never;
}

/** The bindings each stage has: the fields mapping sees `config` and `event`, the body also `fields`. */
const STAGE_VARS = [new Set(['config', 'event']), new Set(['config', 'event', 'fields'])] as const;
const LOCAL: Record<string, string> = { config: 'config', event: 'input', fields: 'fields' };

class Gen {
  readonly lines: string[] = [];
  readonly refs: unknown[] = [];
  private readonly slots = new Map<string, string>();
  private n = 0;

  ref(v: unknown): string {
    this.refs.push(v);
    return `R[${this.refs.length - 1}]`;
  }
  name(prefix: string): string {
    return `${prefix}${this.n++}`;
  }

  /**
   * A path prefix read once: `p` holds the object at the end of it (not null, not an array) or
   * undefined when the path selects nothing there; `f` is set where an array is on the way, for which
   * JSONata's general rules (and so the full evaluator) apply; `s` says the object's prototype is
   * Object.prototype (see ownRead). Written before the statements that use it, in the stage that owns
   * its root.
   */
  slot(root: string, names: readonly string[], into: string[]): { p: string; f: string; s: string } {
    const key = JSON.stringify([root, ...names]);
    const known = this.slots.get(key);
    if (known) return { p: known, f: `${known}f`, s: `${known}s` };
    const p = this.name('p');
    const [f, s] = [`${p}f`, `${p}s`];
    const take = (c: string) => `if (${c} !== null && typeof ${c} === 'object') { if (Array.isArray(${c})) ${f} = true; else { ${p} = ${c}; ${s} = getProto(${c}) === OP; } }`;
    if (names.length === 0) into.push(`let ${p}, ${f} = false, ${s} = false;`, take(root));
    else {
      const parent = this.slot(root, names.slice(0, -1), into);
      into.push(`let ${p}, ${f} = ${parent.f}, ${s} = false;`, `if (${parent.p} !== undefined) { ${ownRead('c', parent, JSON.stringify(names[names.length - 1]))} ${take('c')} }`);
    }
    this.slots.set(key, p);
    return { p, f, s };
  }
}

/**
 * `let c = own property lit of the slot's object, or undefined` (JSONata reads own properties only).
 * hasOwnProperty costs more than the read itself, so it is skipped where the read cannot have come
 * from a prototype: the object's prototype is Object.prototype and Object.prototype has no such name
 * (`in` on a constant key is one inline-cache check, and also catches a polluted Object.prototype).
 */
function ownRead(c: string, slot: { p: string; s: string }, lit: string): string {
  return `let ${c} = ${slot.p}[${lit}]; if (${c} !== undefined && (!${slot.s} || ${lit} in OP) && !hasOwn.call(${slot.p}, ${lit})) ${c} = undefined;`;
}

/** Every leaf answers synchronously in the common case and no key could touch a prototype: fusable. */
function fusable(node: ObjectNode): boolean {
  return node.entries.every((e) => {
    if (e.key === '__proto__') return false;
    if (e.node.kind === 'object') return fusable(e.node);
    return e.node.kind === 'const' || e.node.expr.path.kind === 'compiled';
  });
}

/**
 * The generated function for a preset event's field mapping (or none) and the send body; undefined
 * when the pair is outside what fusing models (an interpreter leaf, a `__proto__` key, a body that is
 * not an object mapping), and the caller keeps the general path.
 */
export function fuseBody(fields: CompiledMapping | undefined, body: CompiledMapping | undefined, checks?: FusedChecks): FusedBuilder | undefined {
  if (!body || body.kind !== 'object' || !fusable(body)) return undefined;
  if (fields && (fields.kind !== 'object' || !fusable(fields) || fields.entries.some((e) => e.spread))) return undefined;
  const g = new Gen();
  const out = g.lines;
  out.push('let v, b1;');
  // Stage 1: the preset's fields, each kept in a local for the spread below.
  const fieldLocals: { key: string; local: string }[] = [];
  if (fields) {
    const o = emitObject(g, fields, 0, out, fieldLocals);
    out.push(`const fields = ${o};`);
  } else out.push('const fields = {};');
  // Stage 2: the body, with the bindings every non-plain leaf and the send checks see.
  out.push('const b = { config, event: input, fields };');
  const o = emitObject(g, body, 1, out, undefined, fields ? fieldLocals : []);
  // Then the checks on the finished body: `true` passes, anything else is the check's failure.
  checks?.exprs.forEach((c, i) => out.push(`v = ${g.ref(c)}.evaluate(${o}, b); if (v instanceof Promise) return drop(v); if (v !== true) ${g.ref(checks.fail)}(${i});`));
  out.push(`return { body: ${o}, fields, bindings: b };`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('R', 'BAIL', 'drop', ...PLAIN_PATH_PARAMS, `return function fusedBody(input, config) {\n${out.join('\n')}\n};`) as (...a: unknown[]) => FusedBuilder;
  return factory(g.refs, FUSE_BAIL, drop, ...PLAIN_PATH_ARGS);
}

/** A promise the fused code gave up on: its outcome is not wanted, and a rejection must not go unhandled. */
function drop(p: Promise<unknown>): typeof FUSE_BAIL {
  p.catch(() => undefined);
  return FUSE_BAIL;
}

/**
 * Statements building one mapping object into a fresh local, whose name is returned. In the fields
 * stage (`collect` given) each leaf's value also stays in a local for the body's `$fields` spread.
 */
function emitObject(g: Gen, node: ObjectNode, stage: 0 | 1, out: string[], collect?: { key: string; local: string }[], fieldLocals?: { key: string; local: string }[]): string {
  const obj = g.name('o');
  const body: string[] = [];
  for (const e of node.entries) {
    if (e.node.kind === 'object') {
      // Built before this object's own statements: values are pure, only the order of keys counts.
      const inner = emitObject(g, e.node, stage, out, undefined, fieldLocals);
      body.push(e.spread ? spreadCode(obj, inner) : `${obj}[${JSON.stringify(e.key)}] = ${inner};`);
      if (collect) collect.push({ key: e.key, local: inner });
      continue;
    }
    if (e.spread && e.node.kind === 'expr' && stage === 1 && fieldLocals && isFieldsVar(e.node.expr.plain)) {
      // `"...": $fields`: the keys the fields stage set, in its order, as the object spread would.
      for (const f of fieldLocals) body.push(`if (${f.local} !== undefined) ${obj}[${JSON.stringify(f.key)}] = ${f.local};`);
      continue;
    }
    const local = collect ? g.name('f') : 'v';
    if (collect) body.push(`let ${local};`);
    body.push(...leafCode(g, e.node, stage, local, out));
    if (e.spread) body.push(spreadCode(obj, local));
    else body.push(`if (${local} !== undefined) ${obj}[${JSON.stringify(e.key)}] = ${local};`);
    if (collect) collect.push({ key: e.key, local });
  }
  out.push(`const ${obj} = {};`, ...body);
  return obj;
}

function isFieldsVar(p: PlainPath | undefined): boolean {
  return p !== undefined && p.variable === 'fields' && p.names.length === 0;
}

/** The spread of a plain object, as compile/mapping.ts does it; anything else makes the general path answer. */
function spreadCode(obj: string, v: string): string {
  return [
    `if (${v} !== undefined) {`,
    `  if (${v} === null || typeof ${v} !== 'object' || Array.isArray(${v})) return BAIL;`,
    `  for (const k in ${v}) { if (!hasOwn.call(${v}, k)) continue; const sv = ${v}[k]; if (sv === undefined) continue; if (k === '__proto__') return BAIL; ${obj}[k] = sv; }`,
    `}`,
  ].join('\n');
}

/** Statements leaving one leaf's value in `local`; prefix reads they need go to `prelude`, once. */
function leafCode(g: Gen, node: Exclude<CompiledMapping, ObjectNode>, stage: 0 | 1, local: string, prelude: string[]): string[] {
  if (node.kind === 'const') return [`${local} = ${g.ref(node.value)};`];
  const bindings = stage === 0 ? '(b1 ??= { config, event: input })' : 'b';
  const full = `${local} = ${g.ref(node.expr)}.evaluate(input, ${bindings}); if (${local} instanceof Promise) return drop(${local});`;
  const p = node.expr.plain;
  if (!p) return [full];
  let root = 'input';
  if (p.variable !== undefined) {
    if (!STAGE_VARS[stage].has(p.variable)) return [full]; // unbound here: the evaluator knows what that means
    root = LOCAL[p.variable]!;
  }
  const sequenceCheck = (c: string) => `if (typeof ${c} === 'function' || (Array.isArray(${c}) && ${c}.sequence === true)) { ${full} } else ${local} = ${c};`;
  if (p.names.length === 0) return [`${local} = undefined;`, `{ const c = ${root}; ${sequenceCheck('c')} }`];
  const slot = g.slot(root, p.names.slice(0, -1), prelude);
  const lit = JSON.stringify(p.names[p.names.length - 1]);
  return [`${local} = undefined;`, `if (${slot.f}) { ${full} } else if (${slot.p} !== undefined) { ${ownRead('c', slot, lit)} if (c !== undefined) { ${sequenceCheck('c')} } }`];
}
