/**
 * Every function an expression may call, with its arity: JSONata's own (their signatures as jsonata
 * 2.2.2 declares them; a test compares them with the package's), the engine's hashing and normalising
 * built-ins (hashing.ts), and the functions a library user adds with `Engine.load({ functions })`. A
 * FunctionSet is what both evaluators are given — the compiled path's table and what the interpreter
 * registers — and what `validate` checks calls against (call-checks.ts).
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import { SignalError } from '../errors.js';
import type { CompiledExpr } from './expression.js';
import { BUILTINS, type Builtin } from './fast/functions.js';
import { bail, param } from './fast/runtime.js';
import { callingCodeOf, encodingOf, FunctionError, hmacSha256, normalizeEmail, normalizePhone, phoneFormatOf, sha256, sha256Once } from './hashing.js';

/** JSONata 2.2.2's functions and their signatures (jsonata.js, `staticFrame.bind` and `$now`/`$millis`). */
export const JSONATA_SIGNATURES: Readonly<Record<string, string>> = {
  sum: '<a<n>:n>', count: '<a:n>', max: '<a<n>:n>', min: '<a<n>:n>', average: '<a<n>:n>', string: '<x-b?:s>',
  substring: '<s-nn?:s>', substringBefore: '<s-s:s>', substringAfter: '<s-s:s>', lowercase: '<s-:s>', uppercase: '<s-:s>',
  length: '<s-:n>', trim: '<s-:s>', pad: '<s-ns?:s>', match: '<s-f<s:o>n?:a<o>>', contains: '<s-(sf):b>',
  replace: '<s-(sf)(sf)n?:s>', split: '<s-(sf)n?:a<s>>', join: '<a<s>s?:s>', formatNumber: '<n-so?:s>', formatBase: '<n-n?:s>',
  formatInteger: '<n-s:s>', parseInteger: '<s-s:n>', number: '<(nsb)-:n>', floor: '<n-:n>', ceil: '<n-:n>', round: '<n-n?:n>',
  abs: '<n-:n>', sqrt: '<n-:n>', power: '<n-n:n>', random: '<:n>', boolean: '<x-:b>', not: '<x-:b>', map: '<af>', zip: '<a+>',
  filter: '<af>', single: '<af?>', reduce: '<afj?:j>', sift: '<o-f?:o>', keys: '<x-:a<s>>', lookup: '<x-s:x>', append: '<xx:a>',
  exists: '<x:b>', spread: '<x-:a<o>>', merge: '<a<o>:o>', reverse: '<a:a>', each: '<o-f:a>', error: '<s?:x>', assert: '<bs?:x>',
  type: '<x:s>', sort: '<af?:a>', shuffle: '<a:a>', distinct: '<x:x>', base64encode: '<s-:s>', base64decode: '<s-:s>',
  encodeUrlComponent: '<s-:s>', encodeUrl: '<s-:s>', decodeUrlComponent: '<s-:s>', decodeUrl: '<s-:s>', eval: '<sx?:x>',
  toMillis: '<s-s?:n>', fromMillis: '<n-s?s?:s>', clone: '<(oa)-:o>', now: '<s?s?:s>', millis: '<:n>',
};

/** One parameter of a JSONata signature. */
export interface SignatureParam {
  /** Type letters (s n b l a o f j x), one or a choice. */
  types: string;
  /** The regex JSONata matches an argument's type letter against (with `m` for missing). */
  regex: string;
  /** `-`: when left out, JSONata passes the context value. */
  context?: boolean;
}

/** The parameters of a JSONata signature, as jsonata's own parseSignature reads them. */
export function parseSignature(signature: string): SignatureParam[] {
  const params: SignatureParam[] = [];
  for (let i = 1; i < signature.length; i++) {
    const c = signature[i]!;
    if (c === ':' || c === '>') break;
    const last = params[params.length - 1];
    if ('snblo'.includes(c)) params.push({ types: c, regex: `[${c}m]` });
    else if (c === 'a' || c === 'x') params.push({ types: c, regex: '[asnblfom]' });
    else if (c === 'f') params.push({ types: c, regex: 'f' });
    else if (c === 'j') params.push({ types: c, regex: '[asnblom]' });
    else if (c === '(') {
      const end = signature.indexOf(')', i);
      const choice = signature.slice(i + 1, end);
      params.push({ types: choice, regex: `[${choice}m]` });
      i = end;
    } else if (c === '<') {
      let depth = 1; // a type parameter of the previous `a` or `f`: skipped
      while (depth > 0 && ++i < signature.length) depth += signature[i] === '<' ? 1 : signature[i] === '>' ? -1 : 0;
    } else if ((c === '-' || c === '?' || c === '+') && last) {
      last.regex += c === '-' ? '?' : c;
      if (c === '-') last.context = true;
    }
  }
  return params;
}

export interface Arity {
  min: number;
  max: number;
}

export function arityOf(params: SignatureParam[]): Arity {
  const min = params.filter((p) => !p.regex.endsWith('?')).length;
  return { min, max: params.some((p) => p.regex.endsWith('+')) ? Infinity : params.length };
}

/** What validate knows about a function. */
export interface KnownFunction {
  name: string;
  arity: Arity;
  /** JSONata's own and the engine's: argument kinds are checked against it where they are literals. */
  params?: SignatureParam[];
  /** A literal argument outside the values the function accepts (e.g. an unknown encoding): the message. */
  literal?: (index: number, count: number, value: unknown) => string | undefined;
  /** Where it comes from, for messages. */
  origin: 'jsonata' | 'engine' | 'user';
}

/** A function added by a library user: pure, synchronous, with its argument counts. */
export interface FunctionDefinition {
  /** Called with the evaluated arguments (undefined where one yields nothing); must not change them. */
  implementation: (...args: any[]) => unknown;
  /** How many arguments a call passes: an exact number, or a range (max may be Infinity). */
  arity: number | { min: number; max: number };
}

export type FunctionDefinitions = Readonly<Record<string, FunctionDefinition>>;

interface EngineFunction {
  signature: string;
  /** The implementation over JSONata-validated arguments; the compiled path calls it behind type checks. */
  impl: (...args: any[]) => unknown;
  literal?: KnownFunction['literal'];
}

const literalEncoding = (fn: string, at: number) => (index: number, _count: number, value: unknown) => {
  if (index !== at) return undefined;
  try {
    encodingOf(fn, value);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
};

/** The engine's built-ins. Undefined in gives undefined out, as JSONata's string functions do. */
const ENGINE_FUNCTIONS: Readonly<Record<string, EngineFunction>> = {
  sha256: {
    signature: '<s-s?:s>',
    impl: (s: string | undefined, encoding: unknown) => {
      const enc = encodingOf('sha256', encoding);
      return s === undefined ? undefined : sha256(s, enc);
    },
    literal: literalEncoding('sha256', 1),
  },
  hmacSha256: {
    signature: '<sss?:s>',
    impl: (key: string | undefined, message: string | undefined, encoding: unknown) => {
      const enc = encodingOf('hmacSha256', encoding);
      return key === undefined || message === undefined ? undefined : hmacSha256(key, message, enc);
    },
    literal: literalEncoding('hmacSha256', 2),
  },
  sha256Once: { signature: '<s-:s>', impl: (s: string | undefined) => (s === undefined ? undefined : sha256Once(s)) },
  normalizeEmail: { signature: '<s-:s>', impl: (s: string | undefined) => (s === undefined ? undefined : normalizeEmail(s)) },
  normalizePhone: {
    signature: '<s-(sn)?s?:s>',
    impl: (s: string | undefined, code: unknown, format: unknown) => {
      const cc = callingCodeOf(code);
      const f = phoneFormatOf(format);
      return s === undefined ? undefined : normalizePhone(s, cc, f);
    },
    literal: (index, _count, value) => {
      try {
        if (index === 1) callingCodeOf(value);
        if (index === 2) phoneFormatOf(value);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    },
  },
};

export const ENGINE_FUNCTION_NAMES: readonly string[] = Object.keys(ENGINE_FUNCTIONS);

/** The compiled path's entry for an engine built-in: each argument checked against its parameter's type, or bail. */
function fastEngineFunction(f: EngineFunction): Builtin {
  const params = parseSignature(f.signature);
  const { min, max } = arityOf(params);
  const types = params.map((p) => p.types);
  const [t0, t1, t2] = types;
  return {
    // Not with fewer arguments than the first parameter needs: JSONata would pass the context.
    arity: Array.from({ length: max - Math.max(min, 1) + 1 }, (_, i) => Math.max(min, 1) + i),
    impl: (a0, a1, a2) => {
      param(a0, t0!);
      if (t1 !== undefined) param(a1, t1);
      if (t2 !== undefined) param(a2, t2);
      try {
        return f.impl(a0, a1, a2);
      } catch (e) {
        if (e instanceof FunctionError) bail(); // the interpreter raises it, as JSONata reports errors
        throw e;
      }
    },
  };
}

/** A user function, checked on every call: a Promise or a function is not a value. */
function checkedUserFunction(name: string, fn: FunctionDefinition['implementation']): (...args: unknown[]) => unknown {
  return (...args) => {
    const r = fn(...args);
    if (typeof r === 'function' || (typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function')) {
      throw new FunctionError('SI3004', `$${name} returned ${typeof r === 'function' ? 'a function' : 'a Promise'}: functions given to Engine.load must return a value synchronously`);
    }
    return r;
  };
}

/** Names no added function may take: the variables the engine binds in some context would shadow it. */
const ENGINE_VARIABLES = new Set(['config', 'event', 'fields', 'auth', 'items', 'group', 'response', 'status', 'page', 'headers', 'challenge']);

export class FunctionSet {
  /** Compiled expressions by source, for this set of functions (see expression.ts). */
  readonly cache = new Map<string, CompiledExpr>();
  constructor(
    readonly known: ReadonlyMap<string, KnownFunction>,
    /** The compiled path's table. */
    readonly fast: Readonly<Record<string, Builtin>>,
    /** What the interpreter registers beyond JSONata's own. */
    readonly registered: readonly { name: string; implementation: (...args: any[]) => unknown; signature?: string }[],
  ) {}
}

function baseSet(): { known: Map<string, KnownFunction>; fast: Record<string, Builtin>; registered: FunctionSet['registered'][number][] } {
  const known = new Map<string, KnownFunction>();
  for (const [name, signature] of Object.entries(JSONATA_SIGNATURES)) {
    const params = parseSignature(signature);
    known.set(name, { name, arity: arityOf(params), params, origin: 'jsonata' });
  }
  const fast: Record<string, Builtin> = { ...BUILTINS };
  const registered: FunctionSet['registered'][number][] = [];
  for (const [name, f] of Object.entries(ENGINE_FUNCTIONS)) {
    const params = parseSignature(f.signature);
    known.set(name, { name, arity: arityOf(params), params, ...(f.literal ? { literal: f.literal } : {}), origin: 'engine' });
    fast[name] = fastEngineFunction(f);
    registered.push({ name, implementation: f.impl, signature: f.signature });
  }
  return { known, fast, registered };
}

const base = baseSet();
/** JSONata's functions and the engine's built-ins. */
export const DEFAULT_FUNCTIONS = new FunctionSet(base.known, base.fast, base.registered);

/** The default functions plus a library user's; a bad declaration or a name clash is an `options.functions` error. */
export function functionSet(defs: FunctionDefinitions | undefined): FunctionSet {
  if (defs === undefined || Object.keys(defs).length === 0) return DEFAULT_FUNCTIONS;
  const { known, fast, registered } = baseSet();
  const problems: string[] = [];
  for (const [name, def] of Object.entries(defs)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) problems.push(`'${name}' is not a function name (letters, digits and _, not starting with a digit; without the $)`);
    else if (known.has(name)) problems.push(`$${name} is already a ${known.get(name)!.origin === 'jsonata' ? 'JSONata' : 'built-in'} function: choose another name`);
    else if (ENGINE_VARIABLES.has(name)) problems.push(`$${name} is a variable the engine binds in expressions: choose another name`);
    if (typeof def?.implementation !== 'function') problems.push(`$${name}: implementation must be a function`);
    const a = typeof def?.arity === 'number' ? { min: def.arity, max: def.arity } : def?.arity;
    const count = (n: unknown, inf: boolean) => (typeof n === 'number' && Number.isInteger(n) && n >= 0) || (inf && n === Infinity);
    if (!a || typeof a !== 'object' || !count(a.min, false) || !count(a.max, true) || a.max < a.min) {
      problems.push(`$${name}: arity must be a whole number of arguments, or { min, max } with 0 <= min <= max (max may be Infinity)`);
    }
    if (problems.length) continue;
    const implementation = checkedUserFunction(name, def.implementation);
    known.set(name, { name, arity: { min: a!.min, max: a!.max }, origin: 'user' });
    // The compiled path calls it with exactly the arguments written, as the interpreter does; up to four.
    fast[name] = { arity: Array.from({ length: Math.min(a!.max, 4) - a!.min + 1 }, (_, i) => a!.min + i), impl: () => undefined, exact: implementation };
    registered.push({ name, implementation });
  }
  if (problems.length) throw new SignalError('options.functions', `Engine.load: functions: ${problems.join('; ')}`);
  return new FunctionSet(known, fast, registered);
}
