/**
 * Operators and constructors: binary operators (boolean, arithmetic, comparison, `&`, `in`), unary minus,
 * and array and object constructors. Wherever JSONata would raise an error, they BAIL to the interpreter.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import { compileNode } from './node.js';
import { append, bail, boolize, createSequence, isDeepEqual, isNumeric, toStr } from './runtime.js';
import { FORBIDDEN_KEYS, has, refuse, sub, type Fn, type Scope } from './scope.js';

export function compileBinary(node: AstNode, scope: Scope): Fn {
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

export function compileUnary(node: AstNode, scope: Scope): Fn {
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
