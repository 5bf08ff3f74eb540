/**
 * Paths and their steps, filters (predicates and indexes) and `*`: JSONata's sequence rules, with a
 * generated direct walk for the common `a.b.c` case inside larger expressions.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { AstNode } from '../expression.js';
import { compileNode, compileVariable } from './node.js';
import { append, bail, checkLength, createSequence, isNumeric, isSequence, toBoolean, type Seq } from './runtime.js';
import { notProvablyOwn, PLAIN_PATH_ARGS, PLAIN_PATH_PARAMS } from './plain-path.js';
import { has, refuse, sub, type Env, type Fn, type Scope } from './scope.js';

export function compilePath(node: AstNode, scope: Scope): Fn {
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
      `{ const n = c[${lit}]; if (n === undefined || ${notProvablyOwn('c', lit)}) return undefined; c = n; }`,
    );
  }
  // A sequence held in the data (a value JSONata computed earlier) is re-sequenced by the general code.
  if (tail) {
    // An item that is an array (flattened by the general code) or a result that is one: the general code.
    body.push(`if (c === undefined) return undefined;`, `if (typeof c === 'function') bail();`, `if (Array.isArray(c)) return general(input, env);`);
    body.push(`const r = tail(c, env);`, `if (Array.isArray(r)) return general(input, env);`, `return r;`);
  } else body.push(`if (typeof c === 'function') bail();`, `if (Array.isArray(c) && c.sequence === true) return general(input, env);`, `return c;`);
  const generate = (): Fn => {
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    const factory = new Function('first', 'general', 'bail', 'tail', ...PLAIN_PATH_PARAMS, `return function walk(input, env) {\n${body.join('\n')}\n};`) as (...a: unknown[]) => Fn;
    return factory(first, general, bail, tail, ...PLAIN_PATH_ARGS);
  };
  if (!scope.lazyCode) return generate();
  let walk: Fn | undefined;
  return (input, env) => (walk ??= generate())(input, env);
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
export function compileFilter(pred: AstNode, scope: Scope): Filter {
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

export const wildcard: Fn = (input) => {
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
