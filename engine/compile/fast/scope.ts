/**
 * What every part of the subset compiler shares: the evaluation state compiled closures receive, the
 * compile-time scope, and the refusal that sends an expression to the interpreter. A file of its own so
 * that the node, path, operator and call compilers depend on it rather than on each other for these.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import type { Builtin } from './functions.js';

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

/** A compiled expression: returns the value JSONata returns, or throws BAIL. */
export type FastFn = (input: unknown, bindings: Record<string, unknown>) => unknown;

export class Refused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function refuse(reason: string): never {
  throw new Refused(reason);
}

/** Deeper expressions are left to the interpreter and its stack guardrail. */
const MAX_DEPTH = 60;
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype', '_jsonata_lambda', '_jsonata_function']);

/** A tail call inside a lambda body (JSONata's tail-call thunk): its result is not normalised. */
export class Thunk {
  constructor(
    readonly run: () => any,
  ) {}
}

export interface Scope {
  /** Lambda parameter names visible here. */
  params: ReadonlySet<string>;
  /** Inside a lambda body, in tail position: a thunk node may appear. */
  tail: boolean;
  depth: number;
  /** Builtins called anywhere in the expression: a binding of the same name shadows them (checked once per evaluation). */
  builtins: Set<string>;
  /** The functions a call may name: JSONata's ported ones, the engine's, a library user's (compile/builtins.ts). */
  functions: Readonly<Record<string, Builtin>>;
  /**
   * Generate code at first use rather than now: set where the closures are only the fallback of a whole
   * expression that is a plain path (plain-path.ts `direct` answers it), so loading a spec of thousands of
   * paths does not generate their code twice. Elsewhere generated code is made now: a lazy wrapper costs
   * a call on every evaluation.
   */
  lazyCode?: boolean;
}

export const has = (n: AstNode, k: string) => Object.prototype.hasOwnProperty.call(n, k) && (n as any)[k] !== undefined;

export function sub(scope: Scope, tail = false): Scope {
  if (scope.depth + 1 > MAX_DEPTH) refuse(`nested deeper than ${MAX_DEPTH}`);
  return { params: scope.params, tail, depth: scope.depth + 1, builtins: scope.builtins, functions: scope.functions, ...(scope.lazyCode ? { lazyCode: true } : {}) };
}
