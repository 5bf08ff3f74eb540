/**
 * Runtime helpers of the compiled JSONata subset: synchronous ports of jsonata 2.2.2's own helpers
 * (sequences, lookup, append, boolean, string, deep equality), so compiled code makes the same
 * decisions the interpreter makes. Anything on which JSONata would raise an error, or that this port
 * does not model, throws BAIL: the caller then re-runs the whole expression in the interpreter, which
 * gives JSONata's own answer or error. A bail is always safe; a wrong answer never is.
 */
/* eslint-disable @typescript-eslint/no-explicit-any */

/** Thrown to hand an evaluation over to the interpreter. */
export const BAIL: unique symbol = Symbol('jsonata-subset-bail');

export function bail(): never {
  throw BAIL;
}

/** JSONata's `sequence` guardrail (engine GUARDRAILS.sequence): longer sequences are left to the interpreter. */
export const MAX_SEQUENCE = 100_000;

export type Seq = any[] & { sequence?: boolean; keepSingleton?: boolean; outerWrapper?: boolean; cons?: boolean; tupleStream?: boolean };

export function createSequence(...item: unknown[]): Seq {
  const s: Seq = [];
  s.sequence = true;
  if (item.length === 1) s.push(item[0]);
  return s;
}

export function isSequence(v: any): boolean {
  return Array.isArray(v) && (v as Seq).sequence === true;
}

/** utils.isNumeric: NaN is not numeric; an infinite number is JSONata error D1001. */
export function isNumeric(n: unknown): n is number {
  if (typeof n !== 'number') return false;
  if (Number.isNaN(n)) return false;
  if (!Number.isFinite(n)) bail();
  return true;
}

/** The wrapper every JSONata `evaluate` applies to a node's result. */
export function normalize(result: any, keepArray: boolean): any {
  if (result && Array.isArray(result) && (result as Seq).sequence === true && !(result as Seq).tupleStream) {
    if (keepArray) (result as Seq).keepSingleton = true;
    if (result.length === 0) return undefined;
    if (result.length === 1) return (result as Seq).keepSingleton ? result : result[0];
  }
  return result;
}

export function checkLength(s: unknown[]): void {
  if (s.length > MAX_SEQUENCE) bail();
}

/** fn.lookup */
export function lookup(input: any, key: string): any {
  if (Array.isArray(input)) {
    const result = createSequence();
    for (let i = 0; i < input.length; i++) {
      const res = lookup(input[i], key);
      if (res !== undefined) {
        if (Array.isArray(res)) for (const v of res) result.push(v);
        else result.push(res);
      }
    }
    checkLength(result);
    return result;
  }
  if (input !== null && typeof input === 'object' && Object.prototype.hasOwnProperty.call(input, key)) {
    const v = input[key];
    if (typeof v === 'function') bail();
    return v;
  }
  if (typeof input === 'function') bail();
  return undefined;
}

/** fn.append */
export function append(arg1: any, arg2: any): any {
  if (arg1 === undefined) return arg2;
  if (arg2 === undefined) return arg1;
  if (!Array.isArray(arg1)) arg1 = createSequence(arg1);
  if (!Array.isArray(arg2)) arg2 = [arg2];
  if (arg1.length + arg2.length > MAX_SEQUENCE) bail();
  return arg1.concat(arg2);
}

/** fn.boolean: a value's effective boolean value (undefined stays undefined). */
export function toBoolean(arg: any): boolean | undefined {
  if (arg === undefined) return undefined;
  if (Array.isArray(arg)) {
    if (arg.length === 1) return toBoolean(arg[0]);
    if (arg.length > 1) return arg.filter((v) => toBoolean(v)).length > 0;
    return false;
  }
  if (typeof arg === 'string') return arg.length > 0;
  if (isNumeric(arg)) return arg !== 0;
  if (typeof arg === 'function') bail();
  if (arg !== null && typeof arg === 'object') return Object.keys(arg).length > 0;
  return arg === true;
}

export function boolize(v: any): boolean {
  const b = toBoolean(v);
  return b === undefined ? false : b;
}

/** fn.string */
export function toStr(arg: any, prettify = false): string | undefined {
  if (arg === undefined) return undefined;
  if (typeof arg === 'string') return arg;
  if (typeof arg === 'function') bail();
  if (typeof arg === 'number' && !Number.isFinite(arg)) bail(); // D3001
  if (Array.isArray(arg) && (arg as Seq).outerWrapper) arg = arg[0];
  // Without a number JSONata would reformat (or refuse) or a function, its replacer changes nothing.
  if (!prettify && plainJson(arg, 0)) return JSON.stringify(arg);
  return JSON.stringify(
    arg,
    (_key, val) => {
      if (val !== undefined && val !== null && isNumeric(val)) return !Number.isInteger(val) ? Number(val.toPrecision(15)) : val;
      if (typeof val === 'function') bail();
      return val;
    },
    prettify ? 2 : 0,
  );
}

/**
 * Significant digits of a number's shortest round-trip form (V8 caches number strings, so this is
 * cheap). At most 15 exactly when JSONata's `Number(v.toPrecision(15))` gives v back unchanged.
 */
function significantDigits(s: string): number {
  let n = 0;
  let started = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 101 || c === 69) break; // the exponent
    if (c >= 48 && c <= 57) {
      if (c !== 48) started = true;
      if (started) n++;
    }
  }
  return n;
}

/**
 * A sufficient test, without making a string, that v's shortest form has at most 15 significant digits:
 * v is the double nearest to m / 10^6 for an integer m below 10^15 (division of exact integers rounds
 * correctly), so a decimal of at most 15 digits reads back as v. Prices and quantities pass here.
 */
function fewDecimals(v: number): boolean {
  const m = v * 1e6;
  return Number.isInteger(m) && Math.abs(m) < 1e15 && m / 1e6 === v;
}

/** True when JSON.stringify's output needs no JSONata replacer: numbers print as they are, no functions, shallow enough. */
function plainJson(v: unknown, depth: number): boolean {
  if (typeof v === 'number') return Number.isInteger(v) || fewDecimals(v) || (Number.isFinite(v) && significantDigits(String(v)) <= 15);
  if (typeof v === 'function') return false;
  if (v === null || typeof v !== 'object') return true;
  if (depth > 50 || typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!plainJson(v[i], depth + 1)) return false;
    return true;
  }
  // Inherited enumerable keys (JSON.stringify skips them) are looked at too: that can only say "not
  // plain" and take the slower exact path, never the reverse, and it saves a hasOwnProperty per key.
  for (const k in v) if (!plainJson((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

/** utils.isDeepEqual */
export function isDeepEqual(lhs: any, rhs: any): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === 'object' && typeof rhs === 'object' && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let i = 0; i < lhs.length; i++) if (!isDeepEqual(lhs[i], rhs[i])) return false;
      return true;
    }
    // JSONata compares own property names, which for an array include `length` and flags such as `sequence`.
    const lkeys = Object.getOwnPropertyNames(lhs).sort();
    const rkeys = Object.getOwnPropertyNames(rhs).sort();
    if (lkeys.length !== rkeys.length) return false;
    for (let i = 0; i < lkeys.length; i++) if (lkeys[i] !== rkeys[i]) return false;
    for (const k of lkeys) if (!isDeepEqual(lhs[k], rhs[k])) return false;
    return true;
  }
  return false;
}

/** The symbol JSONata's signature validator gives a value. */
export function sym(v: unknown): string {
  if (typeof v === 'function') return 'f';
  switch (typeof v) {
    case 'string':
      return 's';
    case 'number':
      return 'n';
    case 'boolean':
      return 'b';
    case 'object':
      return v === null ? 'l' : Array.isArray(v) ? 'a' : 'o';
    default:
      return 'm';
  }
}

/** A signature parameter `a<t>`: undefined stays undefined, a single value of type t is wrapped, anything else is T0412. */
export function arrayOf(arg: any, t: string | undefined): any {
  const s = sym(arg);
  if (s === 'm') return undefined;
  if (s === 'a') {
    if (t !== undefined && arg.length > 0) for (const v of arg) if (sym(v) !== t) bail();
    return arg;
  }
  if (t !== undefined && s !== t) bail();
  return [arg];
}

/** A plain signature parameter of type(s) `types`; undefined always matches. */
export function param(arg: unknown, types: string): void {
  const s = sym(arg);
  if (s !== 'm' && !types.includes(s)) bail();
}
