/**
 * A well-defined subset of JSONata compiled to plain synchronous JavaScript closures, from JSONata's
 * own parsed AST (`jsonata(expr).ast()`), so the grammar is JSONata's. The closures are a port of
 * jsonata 2.2.2's evaluator for the node kinds below, minus its async machinery:
 *
 *   paths with predicates and array flattening (sequences, singleton unwrapping, `[]` keep-array),
 *   `*`, literals, array and object constructors, `? :`, `??`, `?:`, `and`/`or`, comparisons,
 *   arithmetic, unary minus, `&`, `in`, parenthesised blocks without `:=`, `$`, `$$`, bound
 *   variables, and the builtins in functions.ts (lambdas only as the function argument of
 *   `$map`/`$filter`/`$each`).
 *
 * Everything else (regexes, `:=`, `~>`, `..`, `**`, `%`, `@`, `#`, `^(...)`, group-by, transforms,
 * partial application, user functions) is refused at compile time with a reason, and the expression
 * stays with the interpreter. Guardrails: compiled code loops only over the input's own arrays,
 * strings and keys and over the AST, so it always terminates; it never recurses through a lambda
 * (lambdas cannot be named). At run time, anything on which JSONata would raise an error (or that the
 * port does not model) throws BAIL and the whole expression re-runs in the interpreter.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import { BUILTINS, type LambdaValue } from './functions.js';
import {
  BAIL,
  append,
  bail,
  boolize,
  checkLength,
  createSequence,
  isDeepEqual,
  isNumeric,
  isSequence,
  lookup,
  normalize,
  toBoolean,
  toStr,
  type Seq,
} from './runtime.js';

export interface Env {
  b: Record<string, unknown>;
  /** `$$`: the input as given (not the outer-wrapper sequence). */
  root: unknown;
  /** Lambda parameters in scope. */
  readonly vars: Record<string, unknown> | undefined;
  /** The evaluation's own env, which holds the timestamp `$now()`/`$millis()` fix at first use. */
  top: Env | undefined;
  t?: number;
}

export type Fn = (input: any, env: Env) => any;

const NO_BINDINGS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** A compiled expression: returns the value JSONata returns, or throws BAIL. */
export type FastFn = (input: unknown, bindings: Record<string, unknown>) => unknown;

export class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

function refuse(reason: string): never {
  throw new Refused(reason);
}

/** Deeper expressions are left to the interpreter and its stack guardrail. */
const MAX_DEPTH = 60;
const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype', '_jsonata_lambda', '_jsonata_function']);

/** A tail call inside a lambda body (JSONata's tail-call thunk): its result is not normalised. */
export class Thunk {
  constructor(
    readonly run: () => any,
  ) {}
}

interface Scope {
  /** Lambda parameter names visible here. */
  params: ReadonlySet<string>;
  /** Inside a lambda body, in tail position: a thunk node may appear. */
  tail: boolean;
  depth: number;
  /** Builtins called anywhere in the expression: a binding of the same name shadows them (checked once per evaluation). */
  builtins: Set<string>;
}

const has = (n: AstNode, k: string) => Object.prototype.hasOwnProperty.call(n, k) && (n as any)[k] !== undefined;

function sub(scope: Scope, tail = false): Scope {
  if (scope.depth + 1 > MAX_DEPTH) refuse(`nested deeper than ${MAX_DEPTH}`);
  return { params: scope.params, tail, depth: scope.depth + 1, builtins: scope.builtins };
}

/** `evaluate(expr)`: the node, then its predicates, then JSONata's sequence normalisation. */
function compileNode(node: AstNode, scope: Scope): Fn {
  if (has(node, 'group') && node.type !== 'path') refuse('group-by is not in the compiled subset');
  const raw = compileRaw(node, scope);
  const preds = has(node, 'predicate') ? (node.predicate as { expr: AstNode }[]).map((p) => compileFilter(p.expr, sub(scope))) : [];
  const keep = node.keepArray === true;
  if (preds.length === 0 && neverSequence(node)) return raw; // normalising could not change its result
  if (preds.length === 0) return (input, env) => normalize(raw(input, env), keep);
  return (input, env) => {
    let r = raw(input, env);
    for (const p of preds) r = p(r, env);
    return normalize(r, keep);
  };
}

/** Builtins whose result is never a sequence (a string, number, boolean, plain array or object). */
const PLAIN_RESULT = new Set(['max', 'min', 'average', 'abs', 'floor', 'ceil', 'round', 'substringBefore', 'substringAfter', 'contains', 'string', 'number', 'boolean', 'not', 'exists', 'type', 'count', 'sum', 'length', 'lowercase', 'uppercase', 'trim', 'substring', 'join', 'split', 'replace', 'now', 'millis', 'fromMillis', 'toMillis', 'merge']);

/** Nodes whose raw result JSONata's sequence normalisation leaves as it is. */
function neverSequence(node: AstNode): boolean {
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value':
    case 'binary':
    case 'unary':
      return true;
    case 'function': {
      const proc = node.procedure as AstNode;
      return proc.type === 'variable' && PLAIN_RESULT.has(String(proc.value));
    }
    default:
      return false;
  }
}

function compileRaw(node: AstNode, scope: Scope): Fn {
  switch (node.type) {
    case 'path':
      return compilePath(node, scope);
    case 'binary':
      return compileBinary(node, scope);
    case 'unary':
      return compileUnary(node, scope);
    case 'name': {
      const key = String(node.value);
      return (input) => lookup(input, key);
    }
    case 'string':
    case 'number':
    case 'value': {
      const v = node.value;
      return () => v;
    }
    case 'wildcard':
      return wildcard;
    case 'condition':
      return compileCondition(node, scope);
    case 'block':
      return compileBlock(node, scope);
    case 'variable':
      return compileVariable(node, scope);
    case 'function':
      return compileCall(node, scope);
    case 'lambda':
      if (node.thunk === true && scope.tail) {
        const body = node.body as AstNode;
        if (body.type !== 'function' || has(body, 'group')) refuse('unsupported tail call');
        const call = compileCall(body, sub(scope));
        return (input, env) => new Thunk(() => call(input, env));
      }
      return refuse('a function value outside $map/$filter/$each is not in the compiled subset');
    case 'regex':
      return refuse('regular expressions run in the interpreter');
    default:
      return refuse(`'${node.type}' expressions are not in the compiled subset`);
  }
}

// ---- paths ----

function compilePath(node: AstNode, scope: Scope): Fn {
  if (has(node, 'group')) refuse('group-by is not in the compiled subset');
  if (node.tuple || node.seekingParent) refuse('focus, index and parent bindings are not in the compiled subset');
  const steps = node.steps ?? [];
  if (steps.length === 0) refuse('empty path');
  const firstIsVar = steps[0]!.type === 'variable';
  const consFirst = steps[0]!.consarray === true;
  const compiled = steps.map((step, i) => {
    if (step.tuple || has(step, 'focus') || has(step, 'index') || has(step, 'ancestor') || step.type === 'sort' || step.type === 'parent') {
      refuse('focus, index, parent and order-by steps are not in the compiled subset');
    }
    const fn = compileNode(step, sub(scope));
    const stages = has(step, 'stages')
      ? (step.stages as { type: string; expr: AstNode }[]).map((s) => (s.type === 'filter' ? compileFilter(s.expr, sub(scope)) : refuse('index stages are not in the compiled subset')))
      : [];
    return { fn, stages, last: i === steps.length - 1, cons: i === 0 && consFirst };
  });
  const keepSingleton = node.keepSingletonArray === true;
  const general: Fn = (input, env) => {
    let inputSeq: any[] = Array.isArray(input) && !firstIsVar ? input : createSequence(input);
    let result: any;
    for (const step of compiled) {
      result = step.cons ? step.fn(inputSeq, env) : evalStep(step.fn, step.stages, inputSeq, env, step.last);
      if (result === undefined || result.length === 0) break;
      inputSeq = result;
    }
    if (keepSingleton) {
      if (result === null || typeof result !== 'object') bail();
      if (Array.isArray(result) && (result as Seq).cons && !(result as Seq).sequence) result = createSequence(result);
      (result as Seq).keepSingleton = true;
    }
    return result;
  };
  return plainWalk(steps, scope, general, compiled[compiled.length - 1]!.fn) ?? general;
}

/**
 * The common case, `a.b.c` or `$var.b.c` without predicates, over objects: a direct walk of own
 * properties gives what the general code gives (a one-item sequence unwraps to its item; a final
 * array comes back as is). Meeting an array on the way, it hands over to the general code.
 */
function plainWalk(steps: AstNode[], scope: Scope, general: Fn, tailFn: Fn): Fn | undefined {
  let variable: string | undefined;
  const names: string[] = [];
  let tail: Fn | undefined;
  for (const [i, step] of steps.entries()) {
    const plain = !has(step, 'stages') && !has(step, 'predicate') && !has(step, 'group') && !step.keepArray && !step.consarray;
    if (!plain) return undefined;
    if (i === 0 && step.type === 'variable' && step.value !== '' && step.value !== '$') variable = String(step.value);
    else if (step.type === 'name') names.push(String(step.value));
    // `properties.(expr)`: the last step evaluated on the one object the names select.
    else if (i > 0 && i === steps.length - 1 && step.type !== 'variable') tail = tailFn;
    else return undefined;
  }
  const first = variable === undefined ? undefined : compileVariable(steps[0]!, scope);
  // Generated code, so each property read is a named load with its own inline cache (as in
  // hand-written code); names are emitted as JSON string literals.
  const body = [`let c = first === undefined ? input : first(input, env);`];
  for (const name of names) {
    const lit = JSON.stringify(name);
    body.push(
      `if (c === null || typeof c !== 'object') return undefined;`,
      `if (Array.isArray(c)) return general(input, env);`,
      `if (!hasOwn.call(c, ${lit})) return undefined;`,
      `c = c[${lit}];`,
    );
  }
  // A sequence held in the data (a value JSONata computed earlier) is re-sequenced by the general code.
  if (tail) {
    // An item that is an array (flattened by the general code) or a result that is one: the general code.
    body.push(`if (c === undefined) return undefined;`, `if (typeof c === 'function') bail();`, `if (Array.isArray(c)) return general(input, env);`);
    body.push(`const r = tail(c, env);`, `if (Array.isArray(r)) return general(input, env);`, `return r;`);
  } else body.push(`if (typeof c === 'function') bail();`, `if (Array.isArray(c) && c.sequence === true) return general(input, env);`, `return c;`);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('first', 'general', 'hasOwn', 'bail', 'tail', `return function walk(input, env) {\n${body.join('\n')}\n};`) as (...a: unknown[]) => Fn;
  return factory(first, general, Object.prototype.hasOwnProperty, bail, tail);
}

/** A whole expression that is `name.name…` or `$var.name…` without predicates: most mapping leaves. */
export interface PlainPath {
  variable?: string;
  /** The variable names a builtin function: unbound, it is a function value (the interpreter's business). */
  builtin: boolean;
  names: string[];
}

export function plainPathOf(ast: AstNode): PlainPath | undefined {
  const plainNode = (n: AstNode) => !has(n, 'stages') && !has(n, 'predicate') && !has(n, 'group') && !n.keepArray && !n.consarray && !n.tuple;
  let steps: AstNode[];
  if (ast.type === 'variable' && plainNode(ast)) steps = [ast];
  else if (ast.type === 'path' && plainNode(ast) && !ast.keepSingletonArray && !ast.seekingParent) steps = ast.steps ?? [];
  else return undefined;
  const out: PlainPath = { builtin: false, names: [] };
  for (const [i, step] of steps.entries()) {
    if (!plainNode(step) || has(step, 'focus') || has(step, 'index') || has(step, 'ancestor')) return undefined;
    if (i === 0 && step.type === 'variable') {
      if (step.value === '' || step.value === '$') return undefined;
      out.variable = String(step.value);
      out.builtin = Object.prototype.hasOwnProperty.call(BUILTINS, out.variable);
    } else if (step.type === 'name') out.names.push(String(step.value));
    else return undefined;
  }
  return out;
}

/**
 * JavaScript statements that leave a plain path's value in `out` (left untouched, i.e. undefined,
 * when the path selects nothing) and run `fallback` wherever JSONata's general rules apply (an array
 * on the way, a sequence at the end, a function value). They read `input`, `b` (the bindings) and
 * `hasOwn`. Generated, so that each property read is a named load with its own inline cache, as in
 * hand-written code; names are emitted as JSON string literals.
 */
export function plainPathCode(p: PlainPath, out: string, fallback: string, label: string): string {
  const code = [`${label}: {`, 'let c;'];
  if (p.variable !== undefined) {
    const lit = JSON.stringify(p.variable);
    code.push(`if (hasOwn.call(b, ${lit})) c = b[${lit}]; else { ${p.builtin ? fallback : ''} break ${label}; }`);
  } else code.push('c = input;');
  for (const name of p.names) {
    const lit = JSON.stringify(name);
    code.push(
      `if (c === null || typeof c !== 'object') break ${label};`,
      `if (Array.isArray(c)) { ${fallback} break ${label}; }`,
      `if (!hasOwn.call(c, ${lit})) break ${label};`,
      `c = c[${lit}];`,
    );
  }
  code.push(`if (typeof c === 'function' || (Array.isArray(c) && c.sequence === true)) { ${fallback} break ${label}; }`, `${out} = c;`, '}');
  return code.join('\n');
}

function direct(p: PlainPath, full: FastFn): FastFn {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const factory = new Function('full', 'hasOwn', `return function direct(input, b) {\nlet v;\n${plainPathCode(p, 'v', 'return full(input, b);', 'path')}\nreturn v;\n};`) as (...a: unknown[]) => FastFn;
  return factory(full, Object.prototype.hasOwnProperty);
}

type Filter = (input: any, env: Env) => any;

function evalStep(fn: Fn, stages: Filter[], input: any[], env: Env, lastStep: boolean): any {
  const result: any[] = [];
  for (let i = 0; i < input.length; i++) {
    let res = fn(input[i], env);
    for (const s of stages) res = s(res, env);
    if (res !== undefined) result.push(res);
  }
  if (lastStep && result.length === 1 && Array.isArray(result[0]) && !isSequence(result[0])) return result[0];
  const out = createSequence();
  for (const res of result) {
    if (!Array.isArray(res) || (res as Seq).cons) out.push(res);
    else for (let j = 0; j < res.length; j++) out.push(res[j]);
  }
  checkLength(out);
  return out;
}

/** evaluateFilter: a numeric index, or a predicate per item (numbers in its result select positions). */
function compileFilter(pred: AstNode, scope: Scope): Filter {
  if (pred.type === 'number') {
    const at = Math.floor(Number(pred.value));
    return (input) => {
      const seq: any[] = Array.isArray(input) ? input : createSequence(input);
      const index = at < 0 ? seq.length + at : at;
      const item = seq[index];
      if (item === undefined) return createSequence();
      return Array.isArray(item) ? item : createSequence(item);
    };
  }
  const p = compileNode(pred, scope);
  return (input, env) => {
    if (input && (input as Seq).tupleStream) bail();
    const seq: any[] = Array.isArray(input) ? input : createSequence(input);
    const results = createSequence();
    for (let index = 0; index < seq.length; index++) {
      const item = seq[index];
      let res = p(item, env);
      if (isNumeric(res)) res = [res];
      if (Array.isArray(res) && res.every((v) => isNumeric(v))) {
        for (const ires of res) {
          let ii = Math.floor(ires);
          if (ii < 0) ii = seq.length + ii;
          if (ii === index) results.push(item);
        }
      } else if (toBoolean(res)) results.push(item);
    }
    return results;
  };
}

function flatten(arg: any, flattened: any[] = []): any[] {
  if (Array.isArray(arg)) for (const item of arg) flatten(item, flattened);
  else flattened.push(arg);
  return flattened;
}

const wildcard: Fn = (input) => {
  let results: any[] = createSequence();
  if (Array.isArray(input) && (input as Seq).outerWrapper && input.length > 0) input = input[0];
  if (input !== null && typeof input === 'object') {
    for (const key of Object.keys(input)) {
      const value = input[key];
      if (typeof value === 'function') bail();
      if (Array.isArray(value)) results = append(results, flatten(value));
      else results.push(value);
    }
  }
  checkLength(results);
  return results;
};

// ---- operators ----

function compileBinary(node: AstNode, scope: Scope): Fn {
  const op = String(node.value);
  const lhs = compileNode(node.lhs as AstNode, sub(scope));
  const rhs = compileNode(node.rhs as AstNode, sub(scope));
  switch (op) {
    case 'and':
      return (input, env) => boolize(lhs(input, env)) && boolize(rhs(input, env));
    case 'or':
      return (input, env) => boolize(lhs(input, env)) || boolize(rhs(input, env));
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      return numeric(op, lhs, rhs);
    case '=':
      return (input, env) => {
        const l = lhs(input, env);
        const r = rhs(input, env);
        return l === undefined || r === undefined ? false : isDeepEqual(l, r);
      };
    case '!=':
      return (input, env) => {
        const l = lhs(input, env);
        const r = rhs(input, env);
        return l === undefined || r === undefined ? false : !isDeepEqual(l, r);
      };
    case '<':
    case '<=':
    case '>':
    case '>=':
      return comparison(op, lhs, rhs);
    case '&':
      return (input, env) => {
        const l = lhs(input, env);
        const r = rhs(input, env);
        return (l === undefined ? '' : toStr(l)!) + (r === undefined ? '' : toStr(r)!);
      };
    case 'in': {
      const constant = literalArray(node.rhs as AstNode);
      if (constant) {
        return (input, env) => {
          const l = lhs(input, env);
          return l === undefined ? false : constant.includes(l);
        };
      }
      return (input, env) => {
        const l = lhs(input, env);
        let r = rhs(input, env);
        if (l === undefined || r === undefined) return false;
        if (!Array.isArray(r)) r = [r];
        for (let i = 0; i < r.length; i++) if (r[i] === l) return true;
        return false;
      };
    }
    default:
      return refuse(`the '${op}' operator is not in the compiled subset`);
  }
}

/** `["a", "b"]` on the right of `in`: its items, when they are all string or number literals. */
function literalArray(node: AstNode): unknown[] | undefined {
  if (node.type !== 'unary' || node.value !== '[' || has(node, 'predicate') || has(node, 'group') || node.keepArray) return undefined;
  const items = node.expressions as AstNode[];
  if (items.length === 0 || !items.every((i) => (i.type === 'string' || i.type === 'number') && !has(i, 'predicate') && !i.keepArray)) return undefined;
  return items.map((i) => i.value); // strict equality (`===`), as JSONata's `in`: includes() differs only on NaN, which no literal is
}

function numeric(op: string, lhs: Fn, rhs: Fn): Fn {
  const apply =
    op === '+'
      ? (a: number, b: number) => a + b
      : op === '-'
        ? (a: number, b: number) => a - b
        : op === '*'
          ? (a: number, b: number) => a * b
          : op === '/'
            ? (a: number, b: number) => a / b
            : (a: number, b: number) => a % b;
  return (input, env) => {
    const l = lhs(input, env);
    const r = rhs(input, env);
    if (l !== undefined && !isNumeric(l)) bail(); // T2001
    if (r !== undefined && !isNumeric(r)) bail(); // T2002
    if (l === undefined || r === undefined) return undefined;
    const v = apply(l, r);
    if (!Number.isFinite(v)) bail(); // D1001 downstream, or NaN: the interpreter decides
    return v;
  };
}

function comparison(op: string, lhs: Fn, rhs: Fn): Fn {
  return (input, env) => {
    const l = lhs(input, env);
    const r = rhs(input, env);
    const lt = typeof l;
    const rt = typeof r;
    const lc = lt === 'undefined' || lt === 'string' || lt === 'number';
    const rc = rt === 'undefined' || rt === 'string' || rt === 'number';
    if (!lc || !rc) bail(); // T2010
    if (lt === 'undefined' || rt === 'undefined') return undefined;
    if (lt !== rt) bail(); // T2009
    switch (op) {
      case '<':
        return l < r;
      case '<=':
        return l <= r;
      case '>':
        return l > r;
      default:
        return l >= r;
    }
  };
}

function compileUnary(node: AstNode, scope: Scope): Fn {
  switch (node.value) {
    case '-': {
      const e = compileNode(node.expression as AstNode, sub(scope));
      return (input, env) => {
        const v = e(input, env);
        if (v === undefined) return undefined;
        if (isNumeric(v)) return -v;
        return bail(); // D1002
      };
    }
    case '[': {
      const items = (node.expressions as AstNode[]).map((item) => ({ fn: compileNode(item, sub(scope)), nested: item.value === '[' }));
      const cons = node.consarray === true;
      return (input, env) => {
        let result: any[] = [];
        for (const item of items) {
          const v = item.fn(input, env);
          if (v === undefined) continue;
          if (item.nested) result.push(v);
          else result = append(result, v);
        }
        if (cons) Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true });
        return result;
      };
    }
    case '{':
      return compileObject(node.lhs as [AstNode, AstNode][], scope);
    default:
      return refuse(`unary '${String(node.value)}' is not in the compiled subset`);
  }
}

/** evaluateGroupExpression without tuple streams; built as a plain object, prototype keys refused. */
function compileObject(pairs: [AstNode, AstNode][], scope: Scope): Fn {
  const compiled = pairs.map(([k, v]) => {
    if (k.type === 'string' && FORBIDDEN_KEYS.has(String(k.value))) refuse(`object key '${String(k.value)}' names a prototype property`);
    return { key: compileNode(k, sub(scope)), value: compileNode(v, sub(scope)) };
  });
  return (input, env) => {
    const items: any[] = Array.isArray(input) ? input : createSequence(input);
    const groups = new Map<string, { data: any; exprIndex: number }>();
    const n = items.length === 0 ? 1 : items.length;
    for (let itemIndex = 0; itemIndex < n; itemIndex++) {
      const item = items.length === 0 ? undefined : items[itemIndex];
      for (let pairIndex = 0; pairIndex < compiled.length; pairIndex++) {
        const key = compiled[pairIndex]!.key(item, env);
        if (key === undefined) continue;
        if (typeof key !== 'string' || FORBIDDEN_KEYS.has(key)) bail(); // T1003, D1013, or a prototype key
        const existing = groups.get(key);
        if (existing) {
          if (existing.exprIndex !== pairIndex) bail(); // D1009
          existing.data = append(existing.data, item);
        } else groups.set(key, { data: item, exprIndex: pairIndex });
      }
    }
    const result: Record<string, unknown> = {};
    // JSONata walks its (null-prototype) group object, whose integer-like keys come first: so does this object.
    for (const [key, entry] of groups) {
      const v = compiled[entry.exprIndex]!.value(entry.data, env);
      if (v !== undefined) result[key] = v;
    }
    return result;
  };
}

function compileCondition(node: AstNode, scope: Scope): Fn {
  const cond = compileNode(node.condition as AstNode, sub(scope));
  const then = compileNode(node.then as AstNode, sub(scope, scope.tail));
  const otherwise = node.else !== undefined ? compileNode(node.else as AstNode, sub(scope, scope.tail)) : undefined;
  if (scope.tail && (has(node, 'predicate') || node.keepArray)) refuse('unsupported tail call');
  return (input, env) => (toBoolean(cond(input, env)) ? then(input, env) : otherwise ? otherwise(input, env) : undefined);
}

function compileBlock(node: AstNode, scope: Scope): Fn {
  const exprs = node.expressions as AstNode[];
  if (scope.tail && (has(node, 'predicate') || node.keepArray)) refuse('unsupported tail call');
  const fns = exprs.map((e, i) => {
    if (e.type === 'bind') refuse("variable binding ':=' is not in the compiled subset");
    return compileNode(e, sub(scope, scope.tail && i === exprs.length - 1));
  });
  return (input, env) => {
    let r: any;
    for (const f of fns) r = f(input, env);
    return r;
  };
}

function compileVariable(node: AstNode, scope: Scope): Fn {
  const name = String(node.value);
  if (name === '') return (input) => (input && (input as Seq).outerWrapper ? input[0] : input);
  if (name === '$') return (_input, env) => env.root;
  if (scope.params.has(name)) return (_input, env) => env.vars![name];
  const builtin = Object.prototype.hasOwnProperty.call(BUILTINS, name) || name === 'now' || name === 'millis';
  return (_input, env) => {
    if (Object.prototype.hasOwnProperty.call(env.b, name)) {
      const v = env.b[name];
      if (typeof v === 'function') bail();
      return v;
    }
    if (builtin) bail(); // a function as a value
    return undefined;
  };
}

// ---- function calls ----

function compileLambda(node: AstNode, scope: Scope): (input: any, env: Env) => LambdaValue {
  if (node.type !== 'lambda' || node.thunk) refuse('only a function(...) literal can be passed to $map, $filter or $each');
  if (node.signature !== undefined) refuse('lambda signatures are not in the compiled subset');
  const params = (node.arguments as AstNode[]).map((a) => String(a.value));
  const inner: Scope = { params: new Set([...scope.params, ...params]), tail: true, depth: scope.depth + 1, builtins: scope.builtins };
  const body = compileNode(node.body as AstNode, inner);
  return (input, env) => ({
    arity: params.length,
    call: (args: unknown[]) => {
      const vars: Record<string, unknown> = { ...env.vars };
      for (let i = 0; i < params.length; i++) vars[params[i]!] = args[i];
      let r = body(input, { b: env.b, root: env.root, vars, top: env.top });
      while (r instanceof Thunk) r = r.run();
      return r;
    },
  });
}

function compileCall(node: AstNode, scope: Scope): Fn {
  const proc = node.procedure as AstNode;
  if (proc.type !== 'variable') refuse('only built-in functions are called in the compiled subset');
  const name = String(proc.value);
  if (scope.params.has(name)) refuse('calling a lambda parameter is not in the compiled subset');
  const def = BUILTINS[name];
  if (!def) refuse(`$${name}() is not in the compiled subset`);
  const argNodes = node.arguments as AstNode[];
  if (!def.arity.includes(argNodes.length)) refuse(`$${name}() with ${argNodes.length} argument(s) is not in the compiled subset`);
  const args = argNodes.map((a, i) => {
    if (def.lambdaArg === i) return compileLambda(a, sub(scope));
    if (a.type === 'lambda' || a.type === 'regex' || a.type === 'partial') refuse(`$${name}() with a ${a.type} argument runs in the interpreter`);
    return compileNode(a, sub(scope));
  });
  const impl = def.impl;
  const [a0, a1, a2, a3] = args;
  scope.builtins.add(name);
  switch (args.length) {
    case 0:
      return (_input, env) => impl(undefined, undefined, undefined, undefined, env);
    case 1:
      return (input, env) => impl(a0!(input, env), undefined, undefined, undefined, env);
    case 2:
      return (input, env) => impl(a0!(input, env), a1!(input, env), undefined, undefined, env);
    case 3:
      return (input, env) => impl(a0!(input, env), a1!(input, env), a2!(input, env), undefined, env);
    default:
      return (input, env) => impl(a0!(input, env), a1!(input, env), a2!(input, env), a3!(input, env), env);
  }
}

/** Compile an expression's AST; a reason when it is outside the subset. */
export function compileSubset(ast: AstNode): { fn: FastFn; plain?: PlainPath } | { reason: string } {
  try {
    if ((ast as { errors?: unknown }).errors) refuse('syntax errors');
    const top: Scope = { params: new Set(), tail: false, depth: 0, builtins: new Set() };
    const fn = compileNode(ast, top);
    const called = [...top.builtins];
    const hasOwn = Object.prototype.hasOwnProperty;
    // Compiled code is synchronous and cannot re-enter itself (there are no user functions), so one
    // evaluation state per expression is reused rather than allocated per call; lambda calls get their own.
    const env: Env = { b: NO_BINDINGS, root: undefined, vars: undefined, top: undefined };
    env.top = env;
    const full: FastFn = (input, bindings) => {
      for (let i = 0; i < called.length; i++) if (hasOwn.call(bindings, called[i]!)) bail(); // a binding shadows a builtin
      let wrapped: any = input;
      if (Array.isArray(input) && !isSequence(input)) {
        wrapped = createSequence(input);
        (wrapped as Seq).outerWrapper = true;
      }
      env.b = bindings;
      env.root = input;
      env.t = undefined;
      try {
        const r = fn(wrapped, env);
        if (r instanceof Thunk) bail();
        return r;
      } finally {
        env.b = NO_BINDINGS; // hold no event or config between evaluations
        env.root = undefined;
      }
    };
    const plain = plainPathOf(ast);
    return plain ? { fn: direct(plain, full), plain } : { fn: full };
  } catch (e) {
    if (e instanceof Refused) return { reason: e.reason };
    throw e;
  }
}

export { BAIL };
