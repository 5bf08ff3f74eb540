/**
 * Function calls checked at load, so a call that can only fail is a located error instead of a
 * per-event one: the function must exist (else "did you mean", and the list of what does), the number
 * of arguments must fit its arity (JSONata's own, the engine's, a library user's), and an argument
 * written as a literal must be of a kind the function's signature accepts, with a value it accepts
 * (`$sha256(x, 'hex')`, not `$sha256(x, 64)` or `$sha256(x, 'hexa')`).
 */
import type { AstNode } from './expression.js';
import type { FunctionSet, KnownFunction, SignatureParam } from './builtins.js';
import { calledName, checkReferences, type ReferenceProblem, type ReferenceScope } from './references.js';
import { didYouMean } from './suggest.js';

type Node = AstNode;

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';

/** References (references.ts) and calls (this file): every load-time check of one expression. */
export function checkExpression(ast: AstNode, scope: ReferenceScope, functions: FunctionSet): ReferenceProblem[] {
  return [...checkReferences(ast, scope, functions), ...checkCalls(ast, scope, functions)];
}

function walk(n: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(n)) for (const x of n) walk(x, visit);
  else if (isNode(n)) {
    visit(n);
    for (const [k, v] of Object.entries(n)) if (k !== 'value' || isNode(v) || Array.isArray(v)) walk(v, visit);
  }
}

/** Names the expression binds itself (`$x := …`, lambda parameters, `@$x`, `#$i`): calls of them are not checked. */
function localsOf(ast: AstNode): Set<string> {
  const locals = new Set<string>();
  walk(ast, (n) => {
    if (n.type === 'bind' && isNode(n.lhs) && n.lhs.type === 'variable') locals.add(String(n.lhs.value));
    if (n.type === 'lambda' && Array.isArray(n.arguments)) for (const a of n.arguments as Node[]) locals.add(String(a.value));
    if (typeof n.focus === 'string') locals.add(n.focus);
    if (typeof n.index === 'string') locals.add(n.index);
  });
  return locals;
}

/** A literal argument's JSONata type letter and where it starts; undefined when the value is only known at run time. */
function literal(n: Node): { sym: string; value: unknown; start: number } | undefined {
  const end = typeof n.position === 'number' ? n.position : 0;
  if (n.type === 'string') return { sym: 's', value: n.value, start: Math.max(0, end - JSON.stringify(n.value).length) };
  if (n.type === 'number') return { sym: 'n', value: n.value, start: Math.max(0, end - String(n.value).length) };
  if (n.type === 'value') return { sym: n.value === null ? 'l' : 'b', value: n.value, start: Math.max(0, end - String(n.value).length) };
  if (n.type === 'lambda') return { sym: 'f', value: undefined, start: Math.max(0, end - 8) };
  return undefined;
}

const KINDS: Record<string, string> = { s: 'a string', n: 'a number', b: 'a boolean', l: 'null', a: 'an array', o: 'an object', f: 'a function', j: 'a JSON value', x: 'anything' };
const kinds = (types: string) => [...types].map((t) => KINDS[t] ?? t).join(' or ');

/** Whether some run-time value of the unknown arguments lets JSONata's signature match, as jsonata's validate does. */
function signatureCanMatch(params: SignatureParam[], syms: (string | undefined)[]): boolean {
  const regex = new RegExp(`^${params.map((p) => `(${p.regex})`).join('')}$`);
  const unknown = syms.filter((s) => s === undefined).length;
  if (unknown > 4) return true; // too many combinations to try: leave it to run time
  const all = 'asnblfom';
  const tryFrom = (i: number, acc: string): boolean => {
    if (i === syms.length) return regex.test(acc);
    const s = syms[i];
    if (s !== undefined) return tryFrom(i + 1, acc + s);
    for (const c of all) if (tryFrom(i + 1, acc + c)) return true;
    return false;
  };
  return tryFrom(0, '');
}

function available(functions: FunctionSet): string {
  const by = (origin: KnownFunction['origin']) => [...functions.known.values()].filter((f) => f.origin === origin).map((f) => `$${f.name}`).sort();
  const user = by('user');
  return `the engine's ${by('engine').join(', ')}${user.length ? `; added: ${user.join(', ')}` : ''}; JSONata's ${by('jsonata').join(', ')}`;
}

const arityText = ({ min, max }: { min: number; max: number }) =>
  min === max ? `${min} argument${min === 1 ? '' : 's'}` : max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `${min} to ${max} arguments`;

export function checkCalls(ast: AstNode, scope: ReferenceScope, functions: FunctionSet): ReferenceProblem[] {
  const locals = localsOf(ast);
  const problems: ReferenceProblem[] = [];
  // `x ~> $f(a)` calls $f with x first; `x ~> $f` calls it with x alone.
  const applied = new Set<Node>();
  const bareApplied: Node[] = [];
  walk(ast, (n) => {
    if (n.type !== 'apply' || !isNode(n.rhs)) return;
    if (n.rhs.type === 'function') applied.add(n.rhs);
    else if (n.rhs.type === 'variable') bareApplied.push(n.rhs);
  });
  const check = (proc: Node, args: (Node | undefined)[]) => {
    const name = String(proc.value);
    if (locals.has(name) || scope.variables.has(name)) return;
    const at = Math.max(0, (typeof proc.position === 'number' ? proc.position : 0) - name.length - 1);
    const f = functions.known.get(name);
    if (!f) {
      const hint = didYouMean(name, functions.known.keys(), (c) => `$${c}`);
      problems.push({ message: `unknown function $${name}${hint} (available: ${available(functions)})`, position: at });
      return;
    }
    if (args.length < f.arity.min || args.length > f.arity.max) {
      const context = f.params?.[0]?.context === true;
      const shown = context ? { min: f.arity.min + 1, max: f.arity.max } : f.arity;
      const note = context ? ' (the first may be left out inside a path: it is then the context value)' : '';
      problems.push({ message: `$${name} takes ${arityText(shown)}, not ${args.length}${note}`, position: at });
      return;
    }
    if (!f.params) return;
    const lits = args.map((a) => (a ? literal(a) : undefined));
    if (!signatureCanMatch(f.params, lits.map((l) => l?.sym))) {
      // Point at the first literal that, were it anything else, would let the call match.
      const i = lits.findIndex((l, k) => l !== undefined && signatureCanMatch(f.params!, lits.map((x, j) => (j === k ? undefined : x?.sym))));
      const bad = i >= 0 ? lits[i]! : undefined;
      const expected = i >= 0 && i < f.params.length ? `: it takes ${kinds(f.params[i]!.types)} there` : '';
      problems.push({
        message: bad ? `argument ${i + 1} of $${name} is ${KINDS[bad.sym]}${expected} (the call would always fail, T0410)` : `the arguments of $${name} do not fit its parameters (${signatureOf(f)})`,
        position: bad ? bad.start : at,
      });
      return;
    }
    lits.forEach((l, i) => {
      const message = l && l.sym !== 'f' ? f.literal?.(i, args.length, l.value) : undefined;
      if (message) problems.push({ message, position: l!.start });
    });
  };
  walk(ast, (n) => {
    const proc = calledName(n);
    if (!proc) return;
    const args = (Array.isArray(n.arguments) ? (n.arguments as Node[]) : []).map((a) => (a.type === 'operator' && a.value === '?' ? undefined : a));
    check(proc, applied.has(n) ? [undefined, ...args] : args);
  });
  for (const v of bareApplied) if (functions.known.has(String(v.value))) check(v, [undefined]);
  return problems;
}

function signatureOf(f: KnownFunction): string {
  return f.params!.map((p) => kinds(p.types) + (p.regex.endsWith('?') ? ' (optional)' : p.regex.endsWith('+') ? ', one or more' : '')).join('; ');
}
