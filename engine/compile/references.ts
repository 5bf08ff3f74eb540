/**
 * Unknown references are load-time errors, not per-event surprises: every `$variable` an expression
 * reads must be a binding of its context, a function (compile/builtins.ts) or a local it binds itself, and every
 * `$config.<field>` / `$auth.<stage>.<output>` must name something the spec declares.
 */
import { DEFAULT_FUNCTIONS, type FunctionSet } from './builtins.js';
import type { AstNode } from './expression.js';
import { didYouMean } from './suggest.js';


export interface ReferenceScope {
  /** Variables the context binds, e.g. config, auth, event, fields. */
  variables: ReadonlySet<string>;
  /** Declared config fields (checked after `$config.`). */
  configFields: ReadonlySet<string>;
  /** Auth stages visible here, each with its outputs (checked after `$auth.`). */
  authStages: ReadonlyMap<string, ReadonlySet<string>>;
  /** Nothing is the input here (auth requests, batch envelopes): a bare `name` would always be empty. */
  noInput?: boolean;
}

export interface ReferenceProblem {
  message: string;
  /** Character offset in the expression. */
  position: number;
}

type Node = AstNode;

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as { type?: unknown }).type === 'string';
}

function children(node: Node): Node[] {
  const out: Node[] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(visit);
    else if (isNode(v)) out.push(v);
  };
  for (const [k, v] of Object.entries(node)) if (k !== 'value' || isNode(v) || Array.isArray(v)) visit(v);
  return out;
}

/** Start offset of a token: JSONata records the position just past it. */
function start(node: Node, length: number): number {
  return Math.max(0, (typeof node.position === 'number' ? node.position : 0) - length);
}

/** A call's function name: call-checks.ts says what is wrong with an unknown one. */
export function calledName(n: Node): Node | undefined {
  const proc = (n.type === 'function' || n.type === 'partial') && isNode(n.procedure) ? n.procedure : undefined;
  return proc?.type === 'variable' ? proc : undefined;
}

export function checkReferences(ast: AstNode, scope: ReferenceScope, functions: FunctionSet = DEFAULT_FUNCTIONS): ReferenceProblem[] {
  const locals = new Set<string>();
  const all: Node[] = [];
  const called = new Set<Node>();
  const collect = (n: Node) => {
    all.push(n);
    const proc = calledName(n);
    if (proc) called.add(proc);
    if (n.type === 'bind' && isNode(n.lhs) && n.lhs.type === 'variable') locals.add(String(n.lhs.value));
    if (n.type === 'lambda' && Array.isArray(n.arguments)) for (const a of n.arguments as Node[]) locals.add(String(a.value));
    if (typeof n.focus === 'string') locals.add(n.focus);
    if (typeof n.index === 'string') locals.add(n.index);
    children(n).forEach(collect);
  };
  collect(ast as Node);

  const problems: ReferenceProblem[] = [];
  const root = ast as Node;
  const head = root.type === 'path' && Array.isArray(root.steps) ? (root.steps as Node[])[0] : undefined;
  if (scope.noInput && head?.type === 'name') {
    const name = String(head.value);
    problems.push({
      message: scope.configFields.has(name)
        ? `'${name}' reads the input, but nothing is the input here: write $config.${name} (or another variable), or "${name}" for a constant string`
        : `'${name}' reads the input, but nothing is the input here: for the constant string write '"${name}"' (quotes inside the YAML string)${didYouMean(name, scope.configFields, (c) => `$config.${c}`)}`,
      position: start(head, name.length),
    });
  }
  for (const n of all) {
    if (n.type === 'variable') {
      const name = String(n.value);
      if (name === '' || name === '$' || locals.has(name) || functions.known.has(name) || scope.variables.has(name) || called.has(n)) continue;
      const known = [...scope.variables].map((v) => `$${v}`).join(', ');
      const hint = didYouMean(name, [...scope.variables, ...functions.known.keys()], (c) => `$${c}`);
      problems.push({ message: `unknown variable $${name} (this context has ${known || 'no variables'})${hint}`, position: start(n, name.length + 1) });
    }
    if (n.type === 'path' && Array.isArray(n.steps)) {
      const [head, second, third] = n.steps as Node[];
      if (head?.type !== 'variable' || second?.type !== 'name') continue;
      const field = String(second.value);
      if (head.value === 'config' && scope.variables.has('config') && !scope.configFields.has(field)) {
        problems.push({
          message: `$config.${field} is not a config field of this spec (declared: ${[...scope.configFields].join(', ')})${didYouMean(field, scope.configFields, (c) => `$config.${c}`)}`,
          position: start(second, field.length),
        });
      }
      if (head.value === 'auth' && scope.variables.has('auth')) {
        const outputs = scope.authStages.get(field);
        if (!outputs) {
          const stages = [...scope.authStages.keys()];
          problems.push({
            message: `$auth.${field} is not an auth stage that runs before this point (${stages.length ? `available: ${stages.join(', ')}` : 'none does'})${didYouMean(field, stages, (c) => `$auth.${c}`)}`,
            position: start(second, field.length),
          });
        } else if (third?.type === 'name' && !outputs.has(String(third.value))) {
          problems.push({
            message: `$auth.${field}.${String(third.value)} is not a result of auth stage '${field}' (results: ${[...outputs].join(', ')})${didYouMean(String(third.value), outputs, (c) => `$auth.${field}.${c}`)}`,
            position: start(third, String(third.value).length),
          });
        }
      }
    }
  }
  return problems;
}
