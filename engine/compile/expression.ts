/**
 * Stage 3 of 4: JSONata expressions, compiled once at load. Evaluation is the per-event hot path, so
 * constants and plain property paths (the bulk of real mappings) bypass the JSONata interpreter with
 * a direct property walk that gives the same answer; anything else runs through JSONata under
 * guardrails (time and stack depth), so even a hostile expression cannot hang or crash the process.
 */
import jsonata from 'jsonata';
import { SignalError } from '../errors.js';
import { LinearRegExp, regexProblems } from './regex.js';

export type Bindings = Record<string, unknown>;

/**
 * Guardrails every evaluation runs under (docs/spec-language.md quotes these numbers). The timeout is
 * checked between JSONata steps, so it cannot interrupt one long regex match: regexes therefore run on a
 * linear-time engine (see regex.ts).
 */
export const GUARDRAILS = { timeout: 1_000, stack: 200, sequence: 100_000 } as const;

/** JSONata's options: the guardrails, and the linear-time engine behind `$match`, `$contains`, `$replace`, `$split`. */
const JSONATA_OPTIONS = { ...GUARDRAILS, RegexEngine: LinearRegExp as unknown as RegExpConstructor };

/**
 * JSONata evaluates asynchronously and its timeout is wall-clock time from the start of an evaluation.
 * Thousands of evaluations started together would interleave, and each would be charged for the
 * others' work: under load, honest expressions would time out. So at most this many JSONata
 * evaluations run at once, process-wide; the rest wait their turn before their clock starts.
 */
export const MAX_CONCURRENT_EVALUATIONS = 32;

let running = 0;
const queue: (() => void)[] = [];

async function gated<T>(fn: () => Promise<T>): Promise<T> {
  if (running < MAX_CONCURRENT_EVALUATIONS) running++;
  else await new Promise<void>((resolve) => queue.push(resolve)); // the slot is handed over, not re-counted
  try {
    return await fn();
  } finally {
    const next = queue.shift();
    if (next) next();
    else running--;
  }
}

/** JSONata's AST, typed loosely: its published types omit node kinds such as `path` and `bind`. */
export interface AstNode {
  type: string;
  value?: unknown;
  position?: number;
  steps?: AstNode[];
  stages?: unknown;
  [key: string]: unknown;
}

export interface CompiledExpr {
  readonly source: string;
  readonly ast: AstNode;
  /** A plain value when the direct walk answered; a Promise when JSONata had to run. */
  evaluate(input: unknown, bindings: Bindings): unknown | Promise<unknown>;
}

export class ExpressionSyntaxError extends SignalError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super('expression.syntax', message);
    this.name = 'ExpressionSyntaxError';
  }
}

export class ExpressionEvalError extends SignalError {
  constructor(
    message: string,
    readonly jsonataCode: string | undefined,
  ) {
    super('expression.eval', message);
    this.name = 'ExpressionEvalError';
  }
}

/** Marks "fall back to JSONata": the fast walk met a shape (an array) where JSONata semantics differ. */
const FALLBACK = Symbol('fallback');

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own properties only: `constructor` or `__proto__` in a mapping never reaches Object.prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function fastPath(ast: AstNode): ((input: unknown, b: Bindings) => unknown | typeof FALLBACK) | undefined {
  const plain = (n: AstNode) => !n.stages && !(n as { predicate?: unknown }).predicate && !(n as { group?: unknown }).group;
  if (!plain(ast)) return undefined;
  if (ast.type === 'string' || ast.type === 'number' || ast.type === 'value') {
    const constant: unknown = ast.value;
    return () => constant;
  }
  if (ast.type === 'variable' && ast.value !== '' && ast.value !== '$') {
    const name = String(ast.value);
    return (_input, b) => {
      const v = own(b, name);
      return Array.isArray(v) ? FALLBACK : v;
    };
  }
  if (ast.type !== 'path' || !ast.steps?.length) return undefined;
  const steps = ast.steps;
  let root: string | undefined;
  const names: string[] = [];
  for (const [i, step] of steps.entries()) {
    if (!plain(step) || (step as { focus?: unknown }).focus || (step as { index?: unknown }).index) return undefined;
    if (i === 0 && step.type === 'variable' && step.value !== '' && step.value !== '$') root = String(step.value);
    else if (step.type === 'name') names.push(String(step.value));
    else return undefined;
  }
  if ((ast as { keepSingletonArray?: boolean }).keepSingletonArray) return undefined;
  return (input, b) => {
    let cur: unknown = root === undefined ? input : own(b, root);
    for (const name of names) {
      if (Array.isArray(cur)) return FALLBACK;
      if (!isRecord(cur)) return undefined;
      cur = own(cur, name);
    }
    return Array.isArray(cur) ? FALLBACK : cur;
  };
}

interface JsonataErrorLike {
  code?: string;
  message?: string;
  position?: number;
  token?: string;
}

/**
 * Compiled expressions by source. JSONata's parser costs ~0.1 ms per expression and large specs repeat
 * the same leaves (`properties.email`) many times; a compiled expression holds no per-use state, so
 * identical sources share one. Bounded: records keep bringing new field_mappings to a long-running process.
 */
const compiledBySource = new Map<string, CompiledExpr>();
const MAX_CACHED_EXPRESSIONS = 4_096;

export function compileExpression(source: string): CompiledExpr {
  const cached = compiledBySource.get(source);
  if (cached) return cached;
  const compiled = compileUncached(source);
  if (compiledBySource.size >= MAX_CACHED_EXPRESSIONS) compiledBySource.delete(compiledBySource.keys().next().value!);
  compiledBySource.set(source, compiled);
  return compiled;
}

function compileUncached(source: string): CompiledExpr {
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source, JSONATA_OPTIONS);
  } catch (e) {
    const err = e as JsonataErrorLike;
    // JSONata positions point just past the offending token; report its start.
    const pos = Math.max(0, (err.position ?? 0) - (err.token?.length ?? 0));
    throw new ExpressionSyntaxError(`JSONata syntax error ${err.code ?? ''}: ${err.message ?? String(e)}`.replace('  ', ' '), pos);
  }
  const ast = expr.ast() as unknown as AstNode;
  const [refused] = regexProblems(ast);
  if (refused) throw new ExpressionSyntaxError(refused.message, refused.position);
  const walk = fastPath(ast);
  const slow = async (input: unknown, bindings: Bindings): Promise<unknown> => {
    try {
      const v: unknown = await gated(() => expr.evaluate(input, bindings) as Promise<unknown>);
      if (typeof v === 'function') throw new ExpressionEvalError('the expression returned a function, not a value', undefined);
      return v;
    } catch (e) {
      if (e instanceof ExpressionEvalError) throw e;
      const err = e as JsonataErrorLike;
      throw new ExpressionEvalError(err.message ?? String(e), err.code);
    }
  };
  return {
    source,
    ast,
    evaluate: walk
      ? (input, bindings) => {
          const v = walk(input, bindings);
          return v === FALLBACK ? slow(input, bindings) : v;
        }
      : slow,
  };
}
