/**
 * JSONata's official test suite (../shared/jsonata-test-suite, MIT): its cases, and a strict
 * comparison of two evaluation results (undefined vs null, arrays vs singletons, key order).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface SuiteCase {
  id: string;
  expr: string;
  data: unknown;
  bindings: Record<string, unknown>;
  timelimit?: number;
  depth?: number;
  code?: string;
}

const CANDIDATES = [resolve('../shared/jsonata-test-suite'), resolve('../../shared/jsonata-test-suite'), resolve('../../../shared/jsonata-test-suite')];

export function suiteDir(): string {
  const dir = CANDIDATES.find((d) => existsSync(join(d, 'groups')));
  if (!dir) throw new Error(`JSONata test suite not found (looked in ${CANDIDATES.join(', ')})`);
  return dir;
}

export function loadSuite(): SuiteCase[] {
  const dir = suiteDir();
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
