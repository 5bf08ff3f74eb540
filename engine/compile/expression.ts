/**
 * Stage 3 of 4: JSONata expressions, compiled once at load. Evaluation is the per-event hot path, so
 * expressions in a well-defined subset of JSONata (fast/compiler.ts, proven against JSONata's own
 * test suite) run as synchronous compiled closures; anything else runs through JSONata under
 * guardrails (time and stack depth), so even a hostile expression cannot hang or crash the process.
 */
import jsonata from 'jsonata';
import { SignalError } from '../errors.js';
import { DEFAULT_FUNCTIONS, type FunctionSet } from './builtins.js';
import { compileSubset, plainPathAst, type PlainPath } from './fast/compiler.js';
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
  /** Which evaluator runs it: the compiled JSONata subset (synchronous) or the interpreter, and why. */
  readonly path: { kind: 'compiled' } | { kind: 'interpreter'; reason: string };
  /** Set when the expression is a plain property path: mappings inline it into their generated code. */
  readonly plain?: PlainPath;
  /** A plain value when the compiled subset answered; a Promise when JSONata had to run. */
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

interface JsonataErrorLike {
  code?: string;
  message?: string;
  position?: number;
  token?: string;
}

/**
 * Compiled expressions by source, per set of functions (an engine given its own functions has its own
 * cache): JSONata builds its parser's tables on every parse (~0.1–1 ms), and specs repeat expressions
 * (shared partials, `$config.tenant_subdomain`) and are loaded more than once per process. A
 * CompiledExpr is immutable and safe to share. Bounded: the oldest go first.
 */
const MAX_CACHED = 4_000;

export function compileExpression(source: string, functions: FunctionSet = DEFAULT_FUNCTIONS): CompiledExpr {
  const cache = functions.cache;
  const hit = cache.get(source);
  if (hit) return hit;
  const compiled = compileUncached(source, functions);
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(source, compiled);
  return compiled;
}

function parse(source: string, functions: FunctionSet): jsonata.Expression {
  try {
    const expr = jsonata(source, JSONATA_OPTIONS);
    // The engine's built-ins and a library user's functions, beside JSONata's own (compile/builtins.ts).
    for (const f of functions.registered) expr.registerFunction(f.name, f.implementation, f.signature);
    return expr;
  } catch (e) {
    const err = e as JsonataErrorLike;
    // JSONata positions point just past the offending token; report its start.
    const pos = Math.max(0, (err.position ?? 0) - (err.token?.length ?? 0));
    throw new ExpressionSyntaxError(`JSONata syntax error ${err.code ?? ''}: ${err.message ?? String(e)}`.replace('  ', ' '), pos);
  }
}

function compileUncached(source: string, functions: FunctionSet): CompiledExpr {
  // A plain path's AST is built directly, and JSONata's own parse waits until the interpreter is needed.
  const quick = plainPathAst(source);
  let parsed = quick ? undefined : parse(source, functions);
  const interpreter = () => (parsed ??= parse(source, functions));
  const ast = quick ?? (parsed!.ast() as unknown as AstNode);
  const [refused] = regexProblems(ast);
  if (refused) throw new ExpressionSyntaxError(refused.message, refused.position);
  // Regexes are outside the compiled subset: they always run in the interpreter, on the linear engine.
  const fast = compileSubset(ast, functions.fast);
  const slow = async (input: unknown, bindings: Bindings): Promise<unknown> => {
    try {
      const v: unknown = await gated(() => interpreter().evaluate(input, bindings) as Promise<unknown>);
      if (typeof v === 'function') throw new ExpressionEvalError('the expression returned a function, not a value', undefined);
      return v;
    } catch (e) {
      if (e instanceof ExpressionEvalError) throw e;
      const err = e as JsonataErrorLike;
      throw new ExpressionEvalError(err.message ?? String(e), err.code);
    }
  };
  if (!('fn' in fast)) return { source, ast, path: { kind: 'interpreter', reason: fast.reason }, evaluate: slow };
  const run = fast.fn;
  return {
    source,
    ast,
    path: { kind: 'compiled' },
    ...(fast.plain ? { plain: fast.plain } : {}),
    // The compiled closure answers synchronously; where JSONata would raise an error (or the subset
    // meets a shape it does not model) it bails and the interpreter gives JSONata's own answer.
    evaluate: (input, bindings) => {
      try {
        return run(input, bindings);
      } catch {
        // BAIL, or anything the port did not foresee (a RangeError on a huge input): the interpreter
        // answers, under its guardrails. The conformance tests call the compiled code directly and fail on either.
        return slow(input, bindings);
      }
    },
  };
}
