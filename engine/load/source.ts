/**
 * Stage 1 of 4 (load → validate → compile → run): read a spec file and parse its YAML, keeping the node
 * ranges so that every later stage can report `file:line:col` for a key path.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic } from '../errors.js';

export type KeyPath = readonly (string | number)[];

export interface SpecSource {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
  /** The parsed value, or undefined when the YAML itself is broken. */
  value: unknown;
}

export function formatPath(path: KeyPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function parseSource(file: string, text: string): { source: SpecSource; diagnostics: Diagnostic[] } {
  const lines = new LineCounter();
  // uniqueKeys (default) reports duplicate keys; prettyErrors adds line/col to every YAML error.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, strict: true });
  const diagnostics: Diagnostic[] = [];
  for (const err of [...doc.errors, ...doc.warnings]) {
    const pos = err.linePos?.[0] ?? { line: 1, col: 1 };
    diagnostics.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${err.message.split('\n')[0]}` });
  }
  const value = doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 });
  return { source: { file, text, doc, lines, value }, diagnostics };
}

export async function readSource(file: string): Promise<{ source: SpecSource; diagnostics: Diagnostic[] }> {
  return parseSource(file, await readFile(file, 'utf8'));
}

/**
 * The node at a key path, and the key node that names it. Walks as far as the document goes, so a
 * path to a missing key resolves to its nearest existing parent (good enough to point at).
 */
function walk(source: SpecSource, path: KeyPath): { node: Node | null; key: Node | null; complete: boolean } {
  let node: unknown = source.doc.contents;
  let key: Node | null = null;
  for (const step of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(step));
      if (!pair) return { node: node as Node, key, complete: false };
      key = pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof step === 'number') {
      const item = node.items[step];
      if (item === undefined) return { node: node as Node, key, complete: false };
      key = null;
      node = item;
    } else {
      return { node: (node as Node) ?? null, key, complete: false };
    }
  }
  return { node: (node as Node) ?? null, key, complete: true };
}

function position(source: SpecSource, offset: number): { line: number; col: number } {
  return source.lines.linePos(offset);
}

/** A diagnostic that points at the value at `path` (or at its key, with `at: 'key'`). */
export function diagnosticAt(
  source: SpecSource,
  path: KeyPath,
  message: string,
  opts: { at?: 'key' | 'value'; offset?: number } = {},
): Diagnostic {
  const { node, key } = walk(source, path);
  const target = opts.at === 'key' && key ? key : node ?? key;
  let offset = target?.range?.[0] ?? 0;
  if (opts.offset !== undefined && target && isScalar(target)) {
    // Map an offset inside an expression to the file: skip the opening quote of a quoted scalar.
    const quoted = target.type === 'QUOTE_DOUBLE' || target.type === 'QUOTE_SINGLE';
    if (target.type === 'PLAIN' || quoted) offset += opts.offset + (quoted ? 1 : 0);
  }
  const { line, col } = position(source, offset);
  return { file: source.file, line, col, path: formatPath(path), message };
}
