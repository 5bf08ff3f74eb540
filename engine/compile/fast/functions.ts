/**
 * The built-in functions of the compiled subset: ports of jsonata 2.2.2's implementations, each behind
 * a check of its JSONata signature. Arguments that the signature would reject (T0410/T0412), or that
 * would make the function raise an error, bail to the interpreter.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */
import type { Env } from './scope.js';
import { append, arrayOf, bail, createSequence, isNumeric, lookup, param, sym, toBoolean, toStr } from './runtime.js';

/** A lambda passed to $map/$filter/$each. */
export interface LambdaValue {
  arity: number;
  call(args: unknown[]): unknown;
}

export interface Builtin {
  /** Argument counts compiled (others stay with the interpreter). */
  arity: number[];
  /** Index of the argument that must be a `function(...)` literal. */
  lambdaArg?: number;
  /** Arguments by position (up to four), then the evaluation state. */
  impl(a0: any, a1: any, a2: any, a3: any, env: Env): any;
  /** Instead of impl: called with exactly the arguments written (a library user's function). */
  exact?: (...args: any[]) => any;
}

/** utils.stringToArray: code points, not UTF-16 units. */
const chars = (s: string) => Array.from(s);

function str1(arg: unknown): string | undefined {
  param(arg, 's');
  return arg as string | undefined;
}

/**
 * Whether $trim changes a string: a tab, CR or LF, two spaces in a row, or a space at either end. A
 * constant regex (fixed alternatives, linear) runs at about twice the speed of a charCodeAt loop in V8.
 */
const TRIM_NEEDED = /[\t\n\r]| {2}|^ | $/;
function needsTrim(s: string): boolean {
  return TRIM_NEEDED.test(s);
}

/** The ISO 8601 pattern $toMillis accepts without a picture. */
const ISO8601 = /^\d{4}(-[01]\d)?(-[0-3]\d)?(T[0-2]\d:[0-5]\d:[0-5]\d)?(\.\d+)?([+-][0-2]\d:?[0-5]\d|Z)?$/;
/** Years 1970–9999: where JSONata's default picture and toISOString agree. */
const MAX_ISO_MILLIS = 253402300799999;

function iso(millis: number): string {
  if (!(millis >= 0 && millis <= MAX_ISO_MILLIS)) bail();
  return new Date(millis).toISOString();
}

function timestamp(env: Env): number {
  const top = env.top!;
  return (top.t ??= Date.now());
}

function hofArgs(fn: LambdaValue, a1: unknown, a2: unknown, a3: unknown): unknown[] {
  return fn.arity >= 3 ? [a1, a2, a3] : fn.arity >= 2 ? [a1, a2] : [a1];
}

export const BUILTINS: Record<string, Builtin> = {
  string: {
    arity: [1, 2],
    impl: (arg, prettify) => {
      param(prettify, 'b');
      return toStr(arg, prettify === true);
    },
  },
  number: {
    arity: [1],
    impl: (arg) => {
      if (arg === undefined) return undefined;
      if (typeof arg === 'number') return arg;
      if (typeof arg === 'string' && /^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$/.test(arg) && !isNaN(parseFloat(arg)) && isFinite(Number(arg))) return parseFloat(arg);
      if (typeof arg === 'string' && /^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$/.test(arg)) return Number(arg);
      if (arg === true) return 1;
      if (arg === false) return 0;
      return bail(); // D3030 or T0410
    },
  },
  boolean: { arity: [1], impl: (arg) => toBoolean(arg) },
  not: { arity: [1], impl: (arg) => (arg === undefined ? undefined : !toBoolean(arg)) },
  exists: { arity: [1], impl: (arg) => arg !== undefined },
  type: {
    arity: [1],
    impl: (v) => {
      if (v === undefined) return undefined;
      if (v === null) return 'null';
      if (isNumeric(v)) return 'number';
      if (typeof v === 'string') return 'string';
      if (typeof v === 'boolean') return 'boolean';
      if (Array.isArray(v)) return 'array';
      if (typeof v === 'function') bail();
      return 'object';
    },
  },
  count: {
    arity: [1],
    impl: (arg) => {
      const a = arrayOf(arg, undefined);
      return a === undefined ? 0 : a.length;
    },
  },
  sum: {
    arity: [1],
    impl: (arg) => {
      const a = arrayOf(arg, 'n');
      if (a === undefined) return undefined;
      let total = 0;
      for (const n of a) total += n;
      return total;
    },
  },
  max: { arity: [1], impl: (arg) => numbers(arg, (a) => a.reduce((m, n) => Math.max(m, n), -Infinity)) },
  min: { arity: [1], impl: (arg) => numbers(arg, (a) => a.reduce((m, n) => Math.min(m, n), Infinity)) },
  average: {
    arity: [1],
    impl: (arg) =>
      numbers(arg, (a) => {
        let total = 0;
        for (const n of a) total += n;
        return total / a.length;
      }),
  },
  abs: { arity: [1], impl: (arg) => num1(arg, Math.abs) },
  floor: { arity: [1], impl: (arg) => num1(arg, Math.floor) },
  ceil: { arity: [1], impl: (arg) => num1(arg, Math.ceil) },
  round: {
    arity: [1, 2],
    impl: (arg, precision) => {
      param(arg, 'n');
      param(precision, 'n');
      return arg === undefined ? undefined : round(arg, precision);
    },
  },
  substringBefore: {
    arity: [2],
    impl: (s, chars) => {
      param(s, 's');
      if (typeof chars !== 'string') bail();
      if (s === undefined) return undefined;
      const pos = s.indexOf(chars);
      return pos > -1 ? s.substring(0, pos) : s;
    },
  },
  substringAfter: {
    arity: [2],
    impl: (s, chars) => {
      param(s, 's');
      if (typeof chars !== 'string') bail();
      if (s === undefined) return undefined;
      const pos = s.indexOf(chars);
      return pos > -1 ? s.substring(pos + chars.length) : s;
    },
  },
  contains: {
    arity: [2],
    impl: (s, token) => {
      param(s, 's');
      if (token !== undefined && typeof token !== 'string') bail(); // a regex: the interpreter
      if (s === undefined || token === undefined) return undefined;
      return s.indexOf(token) !== -1;
    },
  },
  reverse: {
    arity: [1],
    impl: (arg) => {
      const a = arrayOf(arg, undefined);
      if (a === undefined) return undefined;
      if (a.length <= 1) return a;
      const result = new Array(a.length);
      for (let i = 0; i < a.length; i++) result[a.length - i - 1] = a[i];
      return result;
    },
  },
  length: {
    arity: [1],
    impl: (a) => {
      const s = str1(a);
      return s === undefined ? undefined : chars(s).length;
    },
  },
  lowercase: { arity: [1], impl: (a) => str1(a)?.toLowerCase() },
  uppercase: { arity: [1], impl: (a) => str1(a)?.toUpperCase() },
  trim: {
    arity: [1],
    impl: (a) => {
      const s = str1(a);
      if (s === undefined) return undefined;
      if (!needsTrim(s)) return s;
      let result = s.replace(/[ \t\n\r]+/gm, ' ');
      if (result.charAt(0) === ' ') result = result.substring(1);
      if (result.charAt(result.length - 1) === ' ') result = result.substring(0, result.length - 1);
      return result;
    },
  },
  substring: {
    arity: [2, 3],
    impl: (s, start, length) => {
      param(s, 's');
      if (typeof start !== 'number') bail(); // an undefined start or a non-number shifts JSONata's signature matching
      param(length, 'n');
      if (s === undefined) return undefined;
      const arr = chars(s);
      if (arr.length + start < 0) start = 0;
      if (length !== undefined) {
        if (length <= 0) return '';
        const end = start >= 0 ? start + length : arr.length + start + length;
        return arr.slice(start, end).join('');
      }
      return arr.slice(start).join('');
    },
  },
  join: {
    arity: [1, 2],
    impl: (strs, sep) => {
      const a = arrayOf(strs, 's');
      param(sep, 's');
      if (a === undefined) return undefined;
      return a.join(sep === undefined ? '' : sep);
    },
  },
  split: {
    arity: [2, 3],
    impl: (s, sep, limit) => {
      param(s, 's');
      if (typeof sep !== 'string') bail(); // a regex or a function: the interpreter
      param(limit, 'n');
      if (s === undefined) return undefined;
      if (limit !== undefined && limit < 0) bail(); // D3020
      if (limit !== undefined && limit === 0) return [];
      return s.split(sep, limit);
    },
  },
  replace: {
    arity: [3, 4],
    impl: (s, pattern, replacement, limit) => {
      param(s, 's');
      if (typeof pattern !== 'string' || typeof replacement !== 'string') bail();
      param(limit, 'n');
      if (s === undefined) return undefined;
      if (pattern === '') bail(); // D3010
      if (limit !== undefined && limit < 0) bail(); // D3011
      if (limit !== undefined && !(limit > 0)) return s;
      let result = '';
      let position = 0;
      let count = 0;
      let index = s.indexOf(pattern, position);
      while (index !== -1 && (limit === undefined || count < limit)) {
        result += s.substring(position, index) + replacement;
        position = index + pattern.length;
        count++;
        index = s.indexOf(pattern, position);
      }
      return result + s.substring(position);
    },
  },
  now: { arity: [0], impl: (_0, _1, _2, _3, env) => iso(timestamp(env)) },
  millis: { arity: [0], impl: (_0, _1, _2, _3, env) => timestamp(env) },
  fromMillis: {
    arity: [1],
    impl: (n) => {
      param(n, 'n');
      return n === undefined ? undefined : iso(n);
    },
  },
  toMillis: {
    arity: [1],
    impl: (s) => {
      param(s, 's');
      if (s === undefined) return undefined;
      if (!ISO8601.test(s)) bail(); // D3110
      return Date.parse(s);
    },
  },
  append: { arity: [2], impl: (a, b) => append(a, b) },
  lookup: {
    arity: [2],
    impl: (obj, key) => {
      if (typeof key !== 'string') bail();
      return lookup(obj, key);
    },
  },
  keys: {
    arity: [1],
    impl: (arg) => keys(arg),
  },
  merge: {
    arity: [1],
    impl: (arg) => {
      const a = arrayOf(arg, 'o');
      if (a === undefined) return undefined;
      // JSONata's result has no prototype: a `__proto__` key in the data stays a plain key.
      const result = Object.create(null) as Record<string, unknown>;
      for (const obj of a) for (const k of Object.keys(obj)) result[k] = obj[k];
      return result;
    },
  },
  map: {
    arity: [2],
    lambdaArg: 1,
    impl: (arr: any, fn: LambdaValue) => {
      const a = arrayOf(arr, undefined);
      if (a === undefined) return undefined;
      const result = createSequence();
      for (let i = 0; i < a.length; i++) {
        const res = fn.call(hofArgs(fn, a[i], i, a));
        if (res !== undefined) result.push(res);
      }
      return result;
    },
  },
  filter: {
    arity: [2],
    lambdaArg: 1,
    impl: (arr: any, fn: LambdaValue) => {
      const a = arrayOf(arr, undefined);
      if (a === undefined) return undefined;
      const result = createSequence();
      for (let i = 0; i < a.length; i++) {
        if (toBoolean(fn.call(hofArgs(fn, a[i], i, a)))) result.push(a[i]);
      }
      return result;
    },
  },
  each: {
    arity: [2],
    lambdaArg: 1,
    impl: (obj: any, fn: LambdaValue) => {
      if (sym(obj) !== 'o') bail(); // undefined or not an object: signature rules the interpreter applies
      const result = createSequence();
      for (const key of Object.keys(obj)) {
        const v = fn.call(hofArgs(fn, obj[key], key, obj));
        if (v !== undefined) result.push(v);
      }
      return result;
    },
  },
};

/** `<a<n>:n>` functions: undefined or empty gives undefined. */
function numbers(arg: unknown, f: (a: number[]) => number): number | undefined {
  const a = arrayOf(arg, 'n') as number[] | undefined;
  return a === undefined || a.length === 0 ? undefined : f(a);
}

/** `<n-:n>` functions. */
function num1(arg: unknown, f: (n: number) => number): number | undefined {
  param(arg, 'n');
  return arg === undefined ? undefined : f(arg as number);
}

/** fn.round: half to even, with the decimal shift done on the number's string form, as JSONata does. */
function round(arg: number, precision: number | undefined): number {
  let value: string[];
  if (precision) {
    value = arg.toString().split('e');
    arg = +(value[0] + 'e' + (value[1] ? +value[1] + precision : precision));
  }
  let result = Math.round(arg);
  const diff = result - arg;
  if (Math.abs(diff) === 0.5 && Math.abs(result % 2) === 1) result = result - 1;
  if (precision) {
    value = result.toString().split('e');
    result = +(value[0] + 'e' + (value[1] ? +value[1] - precision : -precision));
  }
  if (Object.is(result, -0)) result = 0;
  return result;
}

/** fn.keys */
function keys(arg: any): any[] {
  let result: any[] = createSequence();
  if (Array.isArray(arg)) {
    const merged = Object.create(null) as Record<string, boolean>;
    for (const item of arg) for (const k of keys(item)) merged[k] = true;
    result = keys(merged);
  } else if (arg !== null && typeof arg === 'object') {
    for (const k of Object.keys(arg)) result.push(k);
  } else if (typeof arg === 'function') bail();
  return result;
}
