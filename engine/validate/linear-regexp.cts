/**
 * The linear-time engine for ajv `pattern`s, as CommonJS: the spec schema's validator is generated at build
 * time as standalone CommonJS code (spec-schema-standalone.ts), and ajv inlines `require(...)` of this file
 * for every pattern. Same translation as engine/compile/regex.ts (ajvLinearRegExp), which the in-process
 * compile uses.
 */
import { RE2JS } from 're2js';

function linearRegExp(pattern: string, flags: string): { test(s: string): boolean; toString(): string } {
  const native = new RegExp(pattern, flags);
  const program = RE2JS.compile(RE2JS.translateRegExp(native));
  return { test: (s: string) => program.test(s), toString: () => native.toString() };
}

export = linearRegExp;
