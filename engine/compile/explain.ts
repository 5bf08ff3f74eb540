/**
 * Which evaluator runs each expression of a compiled spec: the compiled JSONata subset (synchronous
 * closures) or the interpreter, with the reason. `signal-integrations validate --explain` prints it,
 * so an author can see why one expression is slower than the rest.
 */
import type { CompiledExpr } from './expression.js';
import type { CompiledSpec } from './spec.js';

export interface ExprExplanation {
  /** Where in the compiled spec, e.g. `send.request.body.Data.email`, `send.checks.0.that`, `presets.retail.Order Completed.order_value`. */
  where: string;
  source: string;
  evaluator: 'compiled' | 'interpreter';
  reason?: string;
}

function isExpr(v: unknown): v is CompiledExpr {
  return typeof v === 'object' && v !== null && 'ast' in v && 'source' in v && 'path' in v && typeof (v as { evaluate?: unknown }).evaluate === 'function';
}

/** Compiled-spec fields that hold no expressions of the spec's own (or only copies of it). */
const SKIP = new Set(['spec', 'configSchema', 'validateConfig', 'recordScope', 'ast', 'parts', 'file', 'functions']);

export function explainSpec(spec: CompiledSpec): ExprExplanation[] {
  const out: ExprExplanation[] = [];
  const seen = new Set<unknown>();
  const visit = (v: unknown, where: string[]): void => {
    if (typeof v !== 'object' || v === null) return;
    // Before the cycle guard: one compiled expression may serve several places (same source).
    if (isExpr(v)) {
      const p = v.path;
      out.push({ where: where.join('.'), source: v.source, evaluator: p.kind, ...(p.kind === 'interpreter' ? { reason: p.reason } : {}) });
      return;
    }
    if (seen.has(v)) return;
    seen.add(v);
    const node = v as { kind?: unknown; entries?: unknown; expr?: unknown; events?: unknown };
    if (node.kind === 'object' && Array.isArray(node.entries)) {
      for (const e of node.entries as { key: string; node: unknown }[]) visit(e.node, [...where, e.key]);
      return;
    }
    if (node.kind === 'expr') return visit(node.expr, where);
    if (v instanceof Map) {
      for (const [k, x] of v) visit(x, [...where, String(k)]);
      return;
    }
    if (Array.isArray(v)) {
      v.forEach((x, i) => visit(x, [...where, String(i)]));
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (SKIP.has(k) || typeof x === 'function') continue;
      // Templates: `{expr}` placeholders are numbered; presets: the event map is the interesting level.
      visit(x, k === 'exprs' || k === 'events' ? where : [...where, k]);
    }
  };
  visit(spec, []);
  return out;
}

export function formatExplanation(vendor: string, list: readonly ExprExplanation[]): string {
  const compiled = list.filter((e) => e.evaluator === 'compiled').length;
  const lines = [`${vendor}: ${compiled} of ${list.length} expressions compiled, ${list.length - compiled} run in the JSONata interpreter`];
  for (const e of list) {
    const src = e.source.replace(/\s+/g, ' ').trim();
    lines.push(`  ${e.evaluator === 'compiled' ? 'compiled   ' : 'interpreter'}  ${e.where}: ${src.length > 70 ? `${src.slice(0, 67)}...` : src}${e.reason ? `  (${e.reason})` : ''}`);
  }
  return lines.join('\n');
}
