/**
 * JSONata's official test suite (../shared/jsonata-test-suite, MIT): where it is, its cases, and a strict
 * comparison of two evaluation results (undefined vs null, arrays vs singletons, key order).
 *
 * The suite lives outside the repository. `JSONATA_TEST_SUITE` names it explicitly; otherwise it is looked
 * for in `shared/jsonata-test-suite` beside the clone (and up to two folders above). A fresh clone with
 * nothing beside it does not have it: outside CI the conformance test then says it was not run and how to
 * run it; under `CI` a missing suite fails the run.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SuiteCase {
  id: string;
  expr: string;
  data: unknown;
  bindings: Record<string, unknown>;
  timelimit?: number;
  depth?: number;
  code?: string;
}

/** The repository root (this file is test/helpers/jsonata-suite.ts). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the suite may be: `JSONATA_TEST_SUITE` alone when set, else `shared/jsonata-test-suite` beside the clone or above it. */
export function suiteCandidates(env: NodeJS.ProcessEnv = process.env, root = ROOT): string[] {
  if (env.JSONATA_TEST_SUITE) return [resolve(env.JSONATA_TEST_SUITE)];
  return [...new Set(['..', '../..', '../../..'].map((up) => resolve(root, up, 'shared/jsonata-test-suite')))];
}

export type SuiteLocation = { dir: string } | { missing: string[] };

/** The first candidate holding a `groups/` folder, or every place looked in. */
export function locateSuite(env: NodeJS.ProcessEnv = process.env, root = ROOT): SuiteLocation {
  const candidates = suiteCandidates(env, root);
  const dir = candidates.find((d) => existsSync(join(d, 'groups')));
  return dir ? { dir } : { missing: candidates };
}

/**
 * What the conformance test does: run the suite when found; when not, fail under `CI` (as a missing
 * redis-server or chromium does), or else report that the conformance part was not run and how to run it.
 */
export function conformancePlan(location: SuiteLocation, env: NodeJS.ProcessEnv = process.env): { run: string } | { fail: string } | { notRun: string } {
  if ('dir' in location) return { run: location.dir };
  const looked = `looked in ${location.missing.join(', ')}`;
  if (env.CI) return { fail: `JSONata test suite not found (${looked}); CI requires it: put it at ../shared/jsonata-test-suite or set JSONATA_TEST_SUITE` };
  return {
    notRun:
      `JSONata conformance suite NOT RUN: the JSONata test suite was not found (${looked}). ` +
      `The differential (fast-check) tests still ran. To run it, copy test/test-suite/ of github.com/jsonata-js/jsonata ` +
      `(the commit of the installed jsonata version) to ../shared/jsonata-test-suite beside this clone, or set ` +
      `JSONATA_TEST_SUITE=/path/to/test-suite, then: npx vitest run test/jsonata-subset-conformance.test.ts`,
  };
}

export function loadSuite(dir: string): SuiteCase[] {
  const datasets = new Map<string, unknown>();
  for (const f of readdirSync(join(dir, 'datasets'))) datasets.set(f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(dir, 'datasets', f), 'utf8')));
  const out: SuiteCase[] = [];
  for (const group of readdirSync(join(dir, 'groups')).sort()) {
    for (const file of readdirSync(join(dir, 'groups', group)).sort()) {
      if (!file.endsWith('.json')) continue;
      const parsed = JSON.parse(readFileSync(join(dir, 'groups', group, file), 'utf8')) as Record<string, unknown> | Record<string, unknown>[];
      const list = Array.isArray(parsed) ? parsed : [parsed];
      list.forEach((c, i) => {
        if (typeof c.expr !== 'string') return; // a few cases name an expr-file instead
        const data = 'data' in c ? c.data : typeof c.dataset === 'string' ? datasets.get(c.dataset) : undefined;
        out.push({
          id: `${group}/${file}${list.length > 1 ? `#${i}` : ''}`,
          expr: c.expr,
          data,
          bindings: (c.bindings as Record<string, unknown>) ?? {},
          ...(typeof c.timelimit === 'number' ? { timelimit: c.timelimit } : {}),
          ...(typeof c.depth === 'number' ? { depth: c.depth } : {}),
          ...(typeof c.code === 'string' ? { code: c.code } : {}),
        });
      });
    }
  }
  return out;
}

/** Identical as JSONata results: same types, undefined is not null, arrays are not singletons, same key order. */
export function sameResult(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameResult(v, b[i]));
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameResult((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
