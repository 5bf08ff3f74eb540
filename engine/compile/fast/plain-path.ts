/**
 * Whole expressions that are a plain path (`name.name…`, `$var.name…`): the most common mapping leaf,
 * so it gets generated straight-line code, both as a compiled expression's entry point and as
 * statements compile/mapping.ts inlines into a whole mapping.
 */
import type { AstNode } from '../expression.js';
import { BUILTINS } from './functions.js';
import { has, type FastFn } from './scope.js';

/** A whole expression that is `name.name…` or `$var.name…` without predicates: most mapping leaves. */
export interface PlainPath {
  variable?: string;
  /** The variable names a builtin function: unbound, it is a function value (the interpreter's business). */
  builtin: boolean;
  names: string[];
}

export function plainPathOf(ast: AstNode, functions: Readonly<Record<string, unknown>> = BUILTINS): PlainPath | undefined {
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
      out.builtin = Object.prototype.hasOwnProperty.call(functions, out.variable);
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
 * hand-written code; names are emitted as JSON string literals. The code reads PLAIN_PATH_PARAMS too.
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
      `{ const n = c[${lit}]; if (n === undefined || ${notProvablyOwn('c', lit)}) break ${label}; c = n; }`,
    );
  }
  code.push(`if (typeof c === 'function' || (Array.isArray(c) && c.sequence === true)) { ${fallback} break ${label}; }`, `${out} = c;`, '}');
  return code.join('\n');
}

/**
 * JavaScript for "the value just read as `obj[lit]` (not undefined) may be inherited": JSONata reads
 * own properties only, but hasOwnProperty costs more than the read, so it runs only where a prototype
 * could have answered: the object's prototype is not Object.prototype, or Object.prototype has that
 * name (`in` on a constant key is one inline-cache check; it also catches a polluted Object.prototype).
 * Generated code using it receives `hasOwn`, `getProto` (Object.getPrototypeOf) and `OP` (Object.prototype).
 */
export function notProvablyOwn(obj: string, lit: string): string {
  return `(getProto(${obj}) !== OP || ${lit} in OP) && !hasOwn.call(${obj}, ${lit})`;
}

/** The arguments generated code from plainPathCode and notProvablyOwn reads, in the order of PLAIN_PATH_PARAMS. */
export const PLAIN_PATH_PARAMS = ['hasOwn', 'getProto', 'OP'] as const;
export const PLAIN_PATH_ARGS = [Object.prototype.hasOwnProperty, Object.getPrototypeOf, Object.prototype] as const;

/** The plain path's generated function, made at its first evaluation (not at load: most paths of a big spec never run). */
export function direct(p: PlainPath, full: FastFn): FastFn {
  let fn: FastFn | undefined;
  return (input, b) => {
    if (!fn) {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval
      const factory = new Function('full', ...PLAIN_PATH_PARAMS, `return function direct(input, b) {\nlet v;\n${plainPathCode(p, 'v', 'return full(input, b);', 'path')}\nreturn v;\n};`) as (...a: unknown[]) => FastFn;
      fn = factory(full, ...PLAIN_PATH_ARGS);
    }
    return fn(input, b);
  };
}

/** Names that JSONata's parser may read as something other than a name in some position. */
const RESERVED = new Set(['and', 'or', 'in', 'true', 'false', 'null', 'function']);
const PLAIN_SOURCE = /^\$?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/**
 * The AST JSONata's parser gives for the most common expression of all, a plain path written without
 * spaces or quotes (`properties.email`, `$config.key`, `user_id`), built without running the parser:
 * it rebuilds its symbol tables on every call (~0.05 ms and many objects each), which dominated loading
 * a spec of thousands of paths. Anything else: undefined, and the parser runs. A test compares the
 * two on random paths.
 */
export function plainPathAst(source: string): AstNode | undefined {
  if (source.length > 1_000 || !PLAIN_SOURCE.test(source)) return undefined;
  const variable = source.startsWith('$');
  const segments = (variable ? source.slice(1) : source).split('.');
  if (segments.some((n) => RESERVED.has(n))) return undefined;
  let end = variable ? 1 : 0;
  const steps = segments.map((value, i) => {
    end += value.length + (i > 0 ? 1 : 0);
    return { value, type: i === 0 && variable ? 'variable' : 'name', position: end };
  });
  if (variable && steps.length === 1) return steps[0]!;
  return { type: 'path', steps };
}