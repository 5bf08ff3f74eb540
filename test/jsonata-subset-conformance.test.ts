/**
 * Conformance, not hope: every case of JSONata's own test suite whose expression the compiled subset
 * accepts runs through the compiled closure and through the `jsonata` package, and the answers must be
 * identical. Where the compiled closure bails (JSONata would raise an error, or the subset meets a
 * shape it does not model) the engine re-runs the interpreter, so the answer is JSONata's by
 * construction; the counts below say how often each happens, and they may only grow.
 *
 * The suite is not part of the repository (see helpers/jsonata-suite.ts): on a fresh clone outside CI the
 * case says, on stderr and as a test annotation, that conformance was not run and how to run it, and passes;
 * under `CI` a missing suite fails. The second block checks that decision itself, so it is never untested.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { BAIL, compileSubset } from '../engine/compile/fast/compiler.js';
import type { AstNode } from '../engine/compile/expression.js';
import { conformancePlan, loadSuite, locateSuite, sameResult, suiteCandidates } from './helpers/jsonata-suite.js';

/** Floors: raise them when the subset grows; a drop means a case left the compiled path. */
const FLOOR_ACCEPTED = 779;
const FLOOR_ANSWERED = 677;

type Outcome = { value: unknown } | { code: string };

async function interpret(expr: string, data: unknown, bindings: Record<string, unknown>, c: { timelimit?: number; depth?: number }): Promise<Outcome> {
  try {
    const e = jsonata(expr, c.timelimit || c.depth ? ({ timeout: c.timelimit, stack: c.depth } as never) : undefined);
    return { value: await e.evaluate(structuredClone(data), structuredClone(bindings)) };
  } catch (err) {
    return { code: String((err as { code?: string }).code) };
  }
}

describe('compiled JSONata subset vs the jsonata package on JSONata’s test suite', () => {
  it('gives identical results on every case it accepts (or, outside CI without the suite, says it was not run)', async ({ annotate }) => {
    const plan = conformancePlan(locateSuite());
    if ('fail' in plan) throw new Error(plan.fail);
    if ('notRun' in plan) {
      console.warn(`\n*** ${plan.notRun}\n`);
      await annotate(plan.notRun, 'warning');
      return;
    }
    const cases = loadSuite(plan.run);
    let accepted = 0;
    let answered = 0;
    let bailed = 0;
    let errorsExpected = 0;
    const mismatches: string[] = [];
    for (const c of cases) {
      let ast: AstNode;
      try {
        ast = jsonata(c.expr).ast() as unknown as AstNode;
      } catch {
        continue; // a syntax error: the interpreter reports it at load
      }
      const compiled = compileSubset(ast);
      if (!('fn' in compiled)) continue;
      accepted++;
      const expected = await interpret(c.expr, c.data, c.bindings, c);
      if ('code' in expected) errorsExpected++;
      let got: Outcome | 'bail';
      try {
        got = { value: compiled.fn(structuredClone(c.data), structuredClone(c.bindings)) };
      } catch (err) {
        if (err !== BAIL) throw new Error(`${c.id}: ${c.expr}: compiled code threw ${String(err)}`);
        got = 'bail';
      }
      if (got === 'bail') {
        bailed++;
        continue;
      }
      answered++;
      const ok = 'value' in expected && sameResult(got.value, expected.value);
      if (!ok) mismatches.push(`${c.id}: ${c.expr}\n  jsonata:  ${JSON.stringify(expected)}\n  compiled: ${JSON.stringify(got)}`);
    }
    console.log(
      `compiled JSONata subset: accepted ${accepted} of ${cases.length} test-suite cases; ` +
        `${answered} answered by compiled code, ${bailed} handed to the interpreter (${errorsExpected} of the accepted cases expect an error)`,
    );
    expect(mismatches).toEqual([]);
    expect(accepted).toBeGreaterThanOrEqual(FLOOR_ACCEPTED);
    expect(answered).toBeGreaterThanOrEqual(FLOOR_ANSWERED);
  });
});

describe('where the conformance suite is looked for, and what its absence means', () => {
  it('JSONATA_TEST_SUITE wins; otherwise shared/jsonata-test-suite beside the clone and above it', () => {
    expect(suiteCandidates({ JSONATA_TEST_SUITE: '/x/suite' }, '/r/clone')).toEqual(['/x/suite']);
    expect(suiteCandidates({}, '/a/b/clone')).toEqual(['/a/b/shared/jsonata-test-suite', '/a/shared/jsonata-test-suite', '/shared/jsonata-test-suite']);
    expect(suiteCandidates({}, '/r/clone')).toEqual(['/r/shared/jsonata-test-suite', '/shared/jsonata-test-suite']);
  });

  it('found: run it, under CI or not; missing: fails under CI, else reports not run and how to run it', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'suite-locate-'));
    try {
      const clone = join(scratch, 'clone');
      mkdirSync(clone);
      const absent = locateSuite({}, clone);
      expect(absent).toEqual({ missing: suiteCandidates({}, clone) });
      const failed = conformancePlan(absent, { CI: 'true' });
      expect('fail' in failed && failed.fail).toMatch(/not found .*CI requires it/);
      const notRun = conformancePlan(absent, {});
      expect('notRun' in notRun && notRun.notRun).toMatch(/NOT RUN.*fast-check.*JSONATA_TEST_SUITE.*npx vitest run test\/jsonata-subset-conformance/);

      mkdirSync(join(scratch, 'shared/jsonata-test-suite/groups'), { recursive: true });
      const found = locateSuite({}, clone);
      expect(found).toEqual({ dir: join(scratch, 'shared/jsonata-test-suite') });
      expect(conformancePlan(found, { CI: 'true' })).toEqual({ run: join(scratch, 'shared/jsonata-test-suite') });
      expect(conformancePlan(found, {})).toEqual({ run: join(scratch, 'shared/jsonata-test-suite') });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
