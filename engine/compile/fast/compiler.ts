/**
 * A well-defined subset of JSONata compiled to plain synchronous JavaScript closures, from JSONata's
 * own parsed AST (`jsonata(expr).ast()`), so the grammar is JSONata's. The closures are a port of
 * jsonata 2.2.2's evaluator for the node kinds below, minus its async machinery:
 *
 *   paths with predicates and array flattening (sequences, singleton unwrapping, `[]` keep-array),
 *   `*`, literals, array and object constructors, `? :`, `??`, `?:`, `and`/`or`, comparisons,
 *   arithmetic, unary minus, `&`, `in`, parenthesised blocks without `:=`, `$`, `$$`, bound
 *   variables, the builtins in functions.ts (lambdas only as the function argument of
 *   `$map`/`$filter`/`$each`), the engine's hashing built-ins and a library user's functions (../builtins.ts).
 *
 * Everything else (regexes, `:=`, `~>`, `..`, `**`, `%`, `@`, `#`, `^(...)`, group-by, transforms,
 * partial application, user functions) is refused at compile time with a reason, and the expression
 * stays with the interpreter. Guardrails: compiled code loops only over the input's own arrays,
 * strings and keys and over the AST, so it always terminates; it never recurses through a lambda
 * (lambdas cannot be named). At run time, anything on which JSONata would raise an error (or that the
 * port does not model) throws BAIL and the whole expression re-runs in the interpreter.
 *
 * Layout: scope.ts (shared state and refusal), node.ts (the node dispatcher), paths.ts, operators.ts,
 * calls.ts, plain-path.ts (whole-expression plain paths). This file is the entry point and its exports
 * are the module's API, so callers import from here only.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import { DEFAULT_FUNCTIONS } from '../builtins.js';
import type { Builtin } from './functions.js';
import { compileNode } from './node.js';
import { direct, plainPathOf, type PlainPath } from './plain-path.js';
import { BAIL, bail, createSequence, isSequence, type Seq } from './runtime.js';
import { Refused, Thunk, refuse, type Env, type FastFn, type Scope } from './scope.js';

export { PLAIN_PATH_ARGS, PLAIN_PATH_PARAMS, plainPathAst, plainPathCode, plainPathOf, type PlainPath } from './plain-path.js';
export { Refused, Thunk, type Env, type FastFn, type Fn } from './scope.js';

const NO_BINDINGS: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/**
 * Compile an expression's AST; a reason when it is outside the subset. `functions`: what calls may name
 * (default: JSONata's ported built-ins and the engine's; see compile/builtins.ts).
 */
export function compileSubset(ast: AstNode, functions: Readonly<Record<string, Builtin>> = DEFAULT_FUNCTIONS.fast): { fn: FastFn; plain?: PlainPath } | { reason: string } {
  try {
    if ((ast as { errors?: unknown }).errors) refuse('syntax errors');
    const plain = plainPathOf(ast, functions);
    const top: Scope = { params: new Set(), tail: false, depth: 0, builtins: new Set(), functions, ...(plain ? { lazyCode: true } : {}) };
    const fn = compileNode(ast, top);
    const shadowed = shadowCheck([...top.builtins]);
    // Compiled code is synchronous and cannot re-enter itself (there are no user functions), so one
    // evaluation state per expression is reused rather than allocated per call; lambda calls get their own.
    const env: Env = { b: NO_BINDINGS, root: undefined, vars: undefined, top: undefined };
    env.top = env;
    const full: FastFn = (input, bindings) => {
      if (shadowed !== undefined && shadowed(bindings)) bail(); // a binding shadows a builtin
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
    return plain ? { fn: direct(plain, full), plain } : { fn: full };
  } catch (e) {
    if (e instanceof Refused) return { reason: e.reason };
    throw e;
  }
}

const shadowChecks = new Map<string, (bindings: Record<string, unknown>) => boolean>();

/**
 * Whether the bindings define a name the expression calls as a builtin (then JSONata would call the
 * binding). Generated with constant keys so each `in` gets its own inline cache: checked on every
 * evaluation, a loop of `hasOwnProperty` with varying keys cost more than the rest of a small check.
 * `in` also sees inherited names; a false alarm only sends the evaluation to the interpreter.
 */
function shadowCheck(names: string[]): ((bindings: Record<string, unknown>) => boolean) | undefined {
  if (names.length === 0) return undefined;
  const key = names.sort().join(',');
  let check = shadowChecks.get(key);
  if (!check) {
    const test = names.map((n) => `${JSON.stringify(n)} in b`).join(' || ');
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    check = new Function('b', `return ${test};`) as (bindings: Record<string, unknown>) => boolean;
    shadowChecks.set(key, check);
  }
  return check;
}

export { BAIL };
