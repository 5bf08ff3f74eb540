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
  // A called function's name (`$trim(...)`) is not a variable to bind: binding it would shadow the builtin.
  for (const [k, v] of Object.entries(n)) if (!(k === 'procedure' && (v as AstNode).type === 'variable')) namesIn(v, names, vars);
}

const { specs } = await checkSpecs([BUNDLED_SPECS_DIR]);
const sources = [...new Set([...specs.values()].flatMap((s) => explainSpec(s).map((e) => e.source)))];

/** Scalars weighted towards the edges JSONata treats specially: blank and padded strings, floats, null. */
const scalar = fc.oneof(
  { arbitrary: fc.constantFrom('', ' ', '  a  b ', '\t\n', ' x', 'jane@example.com', 'Complete', 'Error', 'Queued', 'upsert', 'string', 'number', 'object', 'array'), weight: 6 },
  { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
  { arbitrary: fc.integer({ min: -1000, max: 1000 }), weight: 1 },
  { arbitrary: fc.constantFrom(0, -0, 0.1 + 0.2, 84.5, 1e21, 123456789.123456789, 1 / 3, -2.5), weight: 2 },
  { arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: fc.constant(null), weight: 1 },
);

/** Random inputs and bindings made of the names one expression uses, so its paths mostly find something. */
function arbitraries(src: string) {
  const names = new Set<string>();
  const vars = new Set<string>();
  namesIn(jsonata(src).ast(), names, vars);
  const keys = [...names, 'other'];
  const { json } = fc.letrec<{ json: unknown; obj: Record<string, unknown> }>((tie) => ({
    json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { arbitrary: scalar, weight: 4 }, { arbitrary: tie('obj'), weight: 1 }, { arbitrary: fc.array(tie('json'), { maxLength: 3 }), weight: 1 }),
    obj: fc.dictionary(fc.constantFrom(...keys), tie('json'), { maxKeys: 4 }),
  }));
  const input = fc.oneof(fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 5 }), json);
  const bindings = fc.record(Object.fromEntries([...vars].map((v) => [v, json])) as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [] });
  return { input, bindings };
}

describe('compiled JSONata subset vs the jsonata package on random events, for every shipped spec expression', () => {
  it(`agrees on ${sources.length} expressions`, async () => {
    let compared = 0;
    for (const src of sources) {
      const compiled = compileSubset(jsonata(src).ast() as unknown as AstNode);
      if (!('fn' in compiled)) continue;
      const interpreter = jsonata(src);
      const { input, bindings } = arbitraries(src);
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
        { numRuns: 300 },
      );
    }
    console.log(`property test: ${sources.length} shipped-spec expressions, ${compared} random evaluations answered by compiled code, all equal to jsonata`);
    expect(compared).toBeGreaterThan(sources.length * 50);
  });
});
