/**
 * The linear-time engine for ajv `pattern`s, as CommonJS: the spec schema's validator is generated at build
 * time as standalone CommonJS code (spec-schema-standalone.ts), and ajv inlines `require(...)` of this file
 * for every pattern. Same translation as engine/compile/regex.ts (ajvLinearRegExp), which the in-process
 * compile uses.
 */
import type { RE2JS as RE2JSClass } from 're2js';

/**
 * Compiled at the first test, not when the generated module loads: the modules hold every pattern of
 * their schemas, which were all compiled (and checked for a linear translation) when they were built,
 * and a fresh process needs few of them. re2js itself is loaded then too.
 */
function compile(native: RegExp): RE2JSClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RE2JS } = require('re2js') as { RE2JS: typeof RE2JSClass };
  return RE2JS.compile(RE2JS.translateRegExp(native));
}

function linearRegExp(pattern: string, flags: string): { test(s: string): boolean; toString(): string } {
  const native = new RegExp(pattern, flags);
  let program: RE2JSClass | undefined;
  return {
    test: (s: string) => (program ??= compile(native)).test(s),
    toString: () => native.toString(),
  };
}

export = linearRegExp;
