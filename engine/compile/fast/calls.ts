/**
 * Calls of the builtins in functions.ts, and the one place a lambda may appear: the function argument of
 * `$map`/`$filter`/`$each`, where it runs with its parameters in scope and its tail calls as thunks.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import type { LambdaValue } from './functions.js';
import { compileNode } from './node.js';
import { Thunk, refuse, sub, type Env, type Fn, type Scope } from './scope.js';

function compileLambda(node: AstNode, scope: Scope): (input: any, env: Env) => LambdaValue {
  if (node.type !== 'lambda' || node.thunk) refuse('only a function(...) literal can be passed to $map, $filter or $each');
  if (node.signature !== undefined) refuse('lambda signatures are not in the compiled subset');
  const params = (node.arguments as AstNode[]).map((a) => String(a.value));
  const inner: Scope = { params: new Set([...scope.params, ...params]), tail: true, depth: scope.depth + 1, builtins: scope.builtins, functions: scope.functions };
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

export function compileCall(node: AstNode, scope: Scope): Fn {
  const proc = node.procedure as AstNode;
  if (proc.type !== 'variable') refuse('only built-in functions are called in the compiled subset');
  const name = String(proc.value);
  if (scope.params.has(name)) refuse('calling a lambda parameter is not in the compiled subset');
  const def = Object.prototype.hasOwnProperty.call(scope.functions, name) ? scope.functions[name] : undefined;
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
  const exact = def.exact;
  if (exact) return (input, env) => exact(...args.map((a) => a(input, env)));
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
