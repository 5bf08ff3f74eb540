/**
 * Every regular expression a spec or an integration record can supply runs on RE2JS, a linear-time
 * engine (no backtracking): JSONata's regex literals (`$match`, `$contains`, `$replace`, `$split`) and
 * the `pattern`s of a spec's config schema. V8's own engine backtracks, so `/(a+)+$/` on a 40-character
 * string would block the event loop for minutes (no timeout can interrupt it), stopping delivery for
 * every tenant. RE2JS was chosen over the native `re2` binding because it is pure JavaScript: the native
 * one needs a C++ build on install (its current release also requires Node 22). See docs/spec-language.md.
 *
 * RE2 has no backreferences (`\1`) and no lookahead (`(?=`, `(?!`): a pattern using them is refused at
 * load with its position, never silently run on the backtracking engine.
 */
import { RE2JS } from 're2js';
import { SignalError } from '../errors.js';

export class RegexNotSupportedError extends SignalError {
  constructor(message: string) {
    super('expression.regex', message);
    this.name = 'RegexNotSupportedError';
  }
}

/** RE2JS's message without its Java-style class prefix, e.g. "invalid or unsupported Perl syntax: `(?=`". */
function cleanMessage(e: unknown): string {
  return String((e as Error)?.message ?? e).replace(/^[A-Za-z]*Exception:\s*/, '');
}

const compiled = new WeakMap<RegExp, RE2JS>();

/**
 * The linear-time program for a JavaScript RegExp, compiled once per RegExp object (JSONata keeps one
 * per regex literal and asks for an engine on every evaluation). Flags i and m carry over; g and y are
 * how the caller iterates, not part of the pattern.
 */
export function linearProgram(re: RegExp): RE2JS {
  let p = compiled.get(re);
  if (!p) {
    try {
      p = RE2JS.compile(RE2JS.translateRegExp(re));
    } catch (e) {
      throw new RegexNotSupportedError(`regular expression /${re.source}/ is not supported by the linear-time regex engine (RE2): ${cleanMessage(e)} (RE2 has no backreferences and no lookahead)`);
    }
    compiled.set(re, p);
  }
  return p;
}

/**
 * A RegExp look-alike for JSONata's `RegexEngine` option: JSONata constructs one from each regex literal,
 * sets `lastIndex`, calls `exec` and reads `lastIndex` back, as with a native global RegExp.
 * Indexes are UTF-16 code units, as in JavaScript.
 */
export class LinearRegExp {
  lastIndex = 0;
  readonly source: string;
  readonly flags: string;
  private readonly program: RE2JS;

  constructor(re: RegExp | string, flags?: string) {
    const native = typeof re === 'string' ? new RegExp(re, flags) : re;
    this.source = native.source;
    this.flags = native.flags;
    this.program = linearProgram(native);
  }

  exec(str: string): RegExpExecArray | null {
    const from = this.lastIndex;
    if (from > str.length) {
      this.lastIndex = 0;
      return null;
    }
    const m = this.program.matcher(str);
    if (!m.find(from)) {
      this.lastIndex = 0;
      return null;
    }
    const groups: (string | undefined)[] = [];
    for (let i = 0; i <= m.groupCount(); i++) groups.push(m.group(i) ?? undefined);
    const out = Object.assign(groups, { index: m.start(), input: str }) as unknown as RegExpExecArray;
    this.lastIndex = m.end();
    return out;
  }

  test(str: string): boolean {
    return this.program.test(str);
  }

  toString(): string {
    return `/${this.source}/${this.flags}`;
  }
}

/**
 * ajv's `code.regExp` option: JSON Schema `pattern` and `patternProperties` compiled for the linear
 * engine. JSON Schema patterns are ECMA-262 with the `u` flag, which is what is checked first.
 */
export const ajvLinearRegExp = Object.assign(
  (pattern: string, flags: string): { test(s: string): boolean; toString(): string } => {
    const native = new RegExp(pattern, flags);
    const program = linearProgram(native); // refused here, when the schema compiles, not per value
    // ajv dedupes patterns by toString(): it must name the pattern.
    return { test: (s: string) => program.test(s), toString: () => native.toString() };
  },
  { code: 'linearRegExp' },
);

/** Regex literals in a JSONata AST that the linear engine refuses, with their position in the source. */
export function regexProblems(ast: unknown): { message: string; position: number }[] {
  const out: { message: string; position: number }[] = [];
  const seen = new Set<unknown>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    if (node instanceof RegExp) return;
    const n = node as { type?: unknown; value?: unknown; position?: unknown };
    if (n.type === 'regex' && n.value instanceof RegExp) {
      try {
        linearProgram(n.value);
      } catch (e) {
        // JSONata positions point just past the token.
        const end = typeof n.position === 'number' ? n.position : 0;
        out.push({ message: (e as Error).message, position: Math.max(0, end - n.value.source.length - 2) });
      }
    }
    for (const v of Object.values(node)) visit(v);
  };
  visit(ast);
  return out;
}

/**
 * `pattern`s and `patternProperties` names in a JSON Schema that the linear engine refuses, with their
 * key path inside the schema, so a spec author is pointed at the pattern rather than at the schema.
 */
export function schemaPatternProblems(schema: unknown, path: (string | number)[] = []): { path: (string | number)[]; message: string }[] {
  const out: { path: (string | number)[]; message: string }[] = [];
  const check = (pattern: string, at: (string | number)[]) => {
    let native: RegExp;
    try {
      native = new RegExp(pattern, 'u');
    } catch {
      return; // not a valid ECMA-262 pattern at all: ajv says so
    }
    try {
      linearProgram(native);
    } catch (e) {
      out.push({ path: at, message: (e as Error).message });
    }
  };
  const visit = (node: unknown, at: (string | number)[]): void => {
    if (Array.isArray(node)) node.forEach((v, i) => visit(v, [...at, i]));
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'pattern' && typeof v === 'string') check(v, [...at, k]);
      else if (k === 'patternProperties' && v && typeof v === 'object') for (const p of Object.keys(v)) check(p, [...at, k, p]);
      if (k !== 'const' && k !== 'enum' && k !== 'default' && k !== 'examples') visit(v, [...at, k]);
    }
  };
  visit(schema, path);
  return out;
}
