/**
 * The node dispatcher: one AST node to one closure, with JSONata's predicates and sequence
 * normalisation around it, plus the small node kinds (conditions, blocks, variables). Paths, operators
 * and calls have files of their own; they call back into compileNode for their operands, a cycle ES
 * modules resolve because every cross-file use happens inside a function body, never at load time.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import { compileCall } from './calls.js';
import { ENGINE_FUNCTION_NAMES } from '../builtins.js';
import { compileBinary, compileUnary } from './operators.js';
import { compileFilter, compilePath, wildcard } from './paths.js';
import { bail, lookup, normalize, toBoolean, type Seq } from './runtime.js';
import { Thunk, has, refuse, sub, type Fn, type Scope } from './scope.js';

/** `evaluate(expr)`: the node, then its predicates, then JSONata's sequence normalisation. */
export function compileNode(node: AstNode, scope: Scope): Fn {
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
const PLAIN_RESULT = new Set(['max', 'min', 'average', 'abs', 'floor', 'ceil', 'round', 'substringBefore', 'substringAfter', 'contains', 'string', 'number', 'boolean', 'not', 'exists', 'type', 'count', 'sum', 'length', 'lowercase', 'uppercase', 'trim', 'substring', 'join', 'split', 'replace', 'now', 'millis', 'fromMillis', 'toMillis', 'merge', ...ENGINE_FUNCTION_NAMES]);

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

export function compileVariable(node: AstNode, scope: Scope): Fn {
  const name = String(node.value);
  if (name === '') return (input) => (input && (input as Seq).outerWrapper ? input[0] : input);
  if (name === '$') return (_input, env) => env.root;
  if (scope.params.has(name)) return (_input, env) => env.vars![name];
  const builtin = Object.prototype.hasOwnProperty.call(scope.functions, name) || name === 'now' || name === 'millis';
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
