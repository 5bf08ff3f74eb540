/**
 * Property-based differential test: every expression of the shipped specs (specs/*.yaml), on random
 * events and bindings built from the very names those expressions use (strings with odd whitespace,
 * floats, nulls, singleton and nested arrays, missing keys), gives the same answer through the
 * compiled closure as through the `jsonata` package, or hands over to the interpreter.
 */
import fc from 'fast-check';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { checkSpecs, BUNDLED_SPECS_DIR } from '../engine/index.js';
import { explainSpec } from '../engine/compile/explain.js';
import type { AstNode } from '../engine/compile/expression.js';
import { BAIL, compileSubset } from '../engine/compile/fast/compiler.js';
import { sameResult } from './helpers/jsonata-suite.js';

/** Every `name` and `$variable` an AST mentions. */
function namesIn(ast: unknown, names: Set<string>, vars: Set<string>): void {
  if (Array.isArray(ast)) {
    for (const x of ast) namesIn(x, names, vars);
    return;
  }
  if (typeof ast !== 'object' || ast === null) return;
  const n = ast as AstNode;
  if (n.type === 'name' && typeof n.value === 'string') names.add(n.value);
  if (n.type === 'variable' && typeof n.value === 'string' && n.value !== '' && n.value !== '$') vars.add(n.value);
  for (const v of Object.values(n)) namesIn(v, names, vars);
}

const { specs } = await checkSpecs([BUNDLED_SPECS_DIR]);
const sources = [...new Set([...specs.values()].flatMap((s) => explainSpec(s).map((e) => e.source)))];
const names = new Set<string>();
const vars = new Set<string>();
for (const src of sources) namesIn(jsonata(src).ast(), names, vars);
const keys = [...names];

const scalar = fc.oneof(
  fc.constantFrom('', ' ', '  a  b ', '\t\n', 'jane@example.com', 'Complete', 'Error', 'Queued', 'upsert', 'string', 'number', 'object', 'array'),
  fc.string({ maxLength: 8 }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.constantFrom(0, -0, 0.1 + 0.2, 84.5, 1e21, 123456789.123456789, 1 / 3, -2.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
);
const { json } = fc.letrec<{ json: unknown; obj: Record<string, unknown> }>((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('obj'), fc.array(tie('json'), { maxLength: 3 })),
  obj: fc.dictionary(fc.constantFrom(...keys), tie('json'), { maxKeys: 6 }),
}));
const input = fc.oneof(fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 8 }), json);
const bindings = fc.record(Object.fromEntries([...vars].map((v) => [v, json])) as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [] });

describe('compiled JSONata subset vs the jsonata package on random events, for every shipped spec expression', () => {
  it(`agrees on ${sources.length} expressions`, async () => {
    let compared = 0;
    for (const src of sources) {
      const compiled = compileSubset(jsonata(src).ast() as unknown as AstNode);
      if (!('fn' in compiled)) continue;
      const interpreter = jsonata(src);
      await fc.assert(
        fc.asyncProperty(input, bindings, async (data, b) => {
          let got: unknown;
          try {
            got = compiled.fn(structuredClone(data), structuredClone(b));
          } catch (e) {
            if (e === BAIL) return; // the interpreter answers: JSONata's result by construction
            throw e;
          }
          compared++;
          let expected: unknown;
          try {
            expected = await interpreter.evaluate(structuredClone(data), structuredClone(b));
          } catch (e) {
            throw new Error(`${src}: jsonata raised ${(e as { code?: string }).code}, the compiled closure answered ${JSON.stringify(got)}`);
          }
          if (!sameResult(got, expected)) throw new Error(`${src}: compiled ${JSON.stringify(got)} vs jsonata ${JSON.stringify(expected)}`);
        }),
        { numRuns: 150 },
      );
    }
    console.log(`property test: ${sources.length} shipped-spec expressions, ${compared} random evaluations answered by compiled code, all equal to jsonata`);
    expect(compared).toBeGreaterThan(sources.length * 50);
  });
});
