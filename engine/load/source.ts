/**
 * Stage 1 of 4 (load → validate → compile → run): read a spec file and parse its YAML, keeping the node
 * ranges so that every later stage can report `file:line:col` for a key path.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { Diagnostic } from '../errors.js';

export type KeyPath = readonly (string | number)[];

interface Layer {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

export interface SpecSource extends Layer {
  /** The parsed value (merged over the specs it extends), or undefined when the YAML is broken. */
  value: unknown;
  /** The specs this one extends, nearest first: keys it inherits are located in them. */
  parents: Layer[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * JSON Merge Patch (RFC 7386): objects merge key by key, `null` removes a key, anything else replaces.
 * A child's keys keep the parent's order; new keys follow.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function formatPath(path: KeyPath): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

export function parseSource(file: string, text: string, seen: readonly string[] = []): { source: SpecSource; diagnostics: Diagnostic[] } {
  const lines = new LineCounter();
  // uniqueKeys (default) reports duplicate keys; prettyErrors adds line/col to every YAML error.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, strict: true });
  const diagnostics: Diagnostic[] = [];
  for (const err of [...doc.errors, ...doc.warnings]) {
    const pos = err.linePos?.[0] ?? { line: 1, col: 1 };
    diagnostics.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
  }
  let value: unknown = doc.errors.length ? undefined : doc.toJS({ maxAliasCount: 100 });
  const source: SpecSource = { file, text, doc, lines, value, parents: [] };
  if (isObject(value) && typeof value.extends === 'string') {
    // `extends: other.yaml` inherits every key of that spec (recursively) unless this file sets it.
    const parentFile = resolve(dirname(file), value.extends);
    const here = (message: string) => diagnostics.push(diagnosticAt(source, ['extends'], message));
    let parentText: string | undefined;
    if ([file, ...seen].includes(parentFile)) here(`extends forms a cycle: ${[parentFile, file, ...seen].join(' → ')}`);
    else {
      try {
        parentText = readFileSync(parentFile, 'utf8');
      } catch (e) {
        here(`cannot read the spec it extends: ${(e as Error).message}`);
      }
    }
    if (parentText !== undefined) {
      const parent = parseSource(parentFile, parentText, [file, ...seen]);
      diagnostics.push(...parent.diagnostics);
      const { extends: _ignored, ...own } = value;
      value = parent.source.value === undefined ? undefined : mergePatch(parent.source.value, own);
      source.parents = [parent.source, ...parent.source.parents];
    } else value = undefined;
    source.value = value;
  }
  return { source, diagnostics };
}

export async function readSource(file: string): Promise<{ source: SpecSource; diagnostics: Diagnostic[] }> {
  return parseSource(file, await readFile(file, 'utf8'));
}

/**
 * The node at a key path, and the key node that names it. Walks as far as the document goes, so a
 * path to a missing key resolves to its nearest existing parent (good enough to point at).
 */
function walk(source: Layer, path: KeyPath): { node: Node | null; key: Node | null; complete: boolean } {
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


/**
 * Map an offset inside a scalar's value to the file: skip the opening quote and count each escape
 * (`''` in single quotes, `\\x` in double quotes) as the one character it stands for. Block scalars
 * point at their start: their folding makes a character position meaningless.
 */
function valueOffset(text: string, node: Node, valueOffsetInScalar: number): number {
  const start = node.range?.[0] ?? 0;
  const type = (node as { type?: string }).type;
  if (type === 'PLAIN') return start + valueOffsetInScalar;
  if (type !== 'QUOTE_SINGLE' && type !== 'QUOTE_DOUBLE') return start;
  let i = start + 1;
  for (let n = 0; n < valueOffsetInScalar && i < text.length; n++) {
    if (type === 'QUOTE_SINGLE' && text[i] === "'" && text[i + 1] === "'") i += 2;
    else if (type === 'QUOTE_DOUBLE' && text[i] === '\\') {
      const c = text[i + 1];
      i += c === 'x' ? 4 : c === 'u' ? 6 : c === 'U' ? 10 : 2;
    } else i += 1;
  }
  return i;
}

/** A diagnostic that points at the value at `path` (or at its key, with `at: 'key'`). */
export function diagnosticAt(
  source: SpecSource,
  path: KeyPath,
  message: string,
  opts: { at?: 'key' | 'value'; offset?: number } = {},
): Diagnostic {
  // An inherited key is reported where it is written: in the nearest spec that has it.
  let layer: Layer = source;
  let found = walk(source, path);
  for (const parent of source.parents) {
    if (found.complete) break;
    const w = walk(parent, path);
    if (w.complete) {
      layer = parent;
      found = w;
    }
  }
  const { node, key } = found;
  const target = opts.at === 'key' && key ? key : node ?? key;
  let offset = target?.range?.[0] ?? 0;
  if (opts.offset !== undefined && target && isScalar(target)) offset = valueOffset(layer.text, target, opts.offset);
  const { line, col } = layer.lines.linePos(offset);
  return { file: layer.file, line, col, path: formatPath(path), message };
}
