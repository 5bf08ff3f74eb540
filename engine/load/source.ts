/**
 * Stage 1 of 4 (load → validate → compile → run): read a spec file and parse its YAML, keeping the node
 * ranges so that every later stage can report `file:line:col` for a key path.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isUtf8 } from 'node:buffer';
import { dirname, extname, isAbsolute, relative, resolve, sep } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';
import { specSchemaText } from '../validate/spec-schema.js';
import { knownParse } from './known-specs.js';
import { SignalError, type Diagnostic } from '../errors.js';

/**
 * The largest spec file (and file it extends) the loader reads: 1 MiB. Real specs are a few KB; the cap
 * keeps a hostile or broken file from exhausting memory or time (docs/spec-language.md, "Limits").
 */
export const MAX_SPEC_BYTES = 1_048_576;

/** A spec file that cannot be read as one: not a regular file, too large, not UTF-8, outside the root. */
export class SpecReadError extends SignalError {
  constructor(
    message: string,
    readonly line = 1,
    readonly col = 1,
    /** The line and column point at the problem inside the file (bad bytes), not at the file as a whole. */
    readonly located = false,
  ) {
    super('spec.read', message);
    this.name = 'SpecReadError';
  }
}

/**
 * Read a spec file's bytes, checked before anything is read: a regular file (not a device such as
 * /dev/zero, a FIFO or a directory) of at most MAX_SPEC_BYTES. Opened non-blocking, so a FIFO cannot
 * hang the open, and checked on the open descriptor, so the file cannot be swapped after the check.
 */
export function readSpecBytes(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SpecReadError(err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'a folder, not a file' : err.message);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new SpecReadError(`not a regular file (${st.isDirectory() ? 'a folder' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'not a file'})`);
    if (st.size > MAX_SPEC_BYTES) throw new SpecReadError(`${st.size} bytes; a spec file may be at most ${MAX_SPEC_BYTES} bytes (1 MiB)`);
    // Read at most one byte past the cap: a file that grew since fstat is still refused.
    const buf = Buffer.alloc(Math.min(st.size, MAX_SPEC_BYTES) + 1);
    let n = 0;
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null);
      if (r === 0) break;
      n += r;
      if (n === buf.length) break;
    }
    if (n > MAX_SPEC_BYTES) throw new SpecReadError(`over ${MAX_SPEC_BYTES} bytes; a spec file may be at most ${MAX_SPEC_BYTES} bytes (1 MiB)`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Offset of the first byte that is not part of well-formed UTF-8 (overlong forms and surrogates included). */
function firstInvalidUtf8(buf: Buffer): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = (b & 0xe0) === 0xc0 ? 2 : (b & 0xf0) === 0xe0 ? 3 : (b & 0xf8) === 0xf0 ? 4 : 0;
    if (!len || i + len > buf.length) return i;
    let cp = b & (0x7f >> len);
    for (let k = 1; k < len; k++) {
      const c = buf[i + k]!;
      if ((c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < [0, 0, 0x80, 0x800, 0x10000][len]! || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += len;
  }
  return -1;
}

/**
 * Decode a spec's bytes as UTF-8, refusing invalid bytes with their line and column rather than turning
 * them into U+FFFD: a mangled value (a key, a secret's name, a URL) would otherwise load silently.
 */
export function decodeSpec(buf: Buffer): string {
  if (isUtf8(buf)) return buf.toString('utf8');
  const at = firstInvalidUtf8(buf);
  const before = buf.subarray(0, Math.max(0, at)).toString('utf8');
  const line = before.split('\n').length;
  const col = before.length - before.lastIndexOf('\n');
  throw new SpecReadError(`not valid UTF-8: byte 0x${buf[at]?.toString(16).padStart(2, '0') ?? '??'} (save the spec as UTF-8)`, line, col, true);
}

/** Resolve symlinks where the path exists; otherwise the path as given (the read then says it is missing). */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Where `extends` may point: a `.yaml`/`.yml` file inside the spec root (the folder the specs were loaded
 * from, or its subfolders), also once symlinks are resolved. Returns a reason when it may not.
 */
export function extendsRefusal(target: string, root: string): string | undefined {
  if (!['.yaml', '.yml'].includes(extname(target).toLowerCase())) return `extends must name a .yaml or .yml spec file (it resolves to ${target})`;
  if (!inside(resolve(root), target) || !inside(real(root), real(target))) {
    return `extends must stay inside the spec folder ${resolve(root)} (it resolves to ${real(target)})`;
  }
  return undefined;
}

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

/**
 * Duplicate keys, found in one pass with a set per map. yaml's own `uniqueKeys` check compares every
 * pair of keys in a map: 40,000 keys took a minute.
 */
function duplicateKeys(doc: Document.Parsed, lines: LineCounter, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const k = pair.key.value;
        if (seen.has(k)) {
          const { line, col } = lines.linePos(pair.key.range?.[0] ?? 0);
          out.push({ file, line, col, path: '', message: `YAML: Map keys must be unique ('${String(k)}' is repeated)` });
        }
        seen.add(k);
      }
    },
  });
  return out;
}

/**
 * Aliases inside the node they name (`z: &z [ *z ]`): a circular value no JSON (and no request body) can
 * hold. Found on the document, before its value is built, each at the alias.
 */
function circularAliases(doc: Document.Parsed, lines: LineCounter, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  visit(doc, {
    Alias(_key, alias) {
      const target = alias.resolve(doc);
      const [start, end] = target?.range ?? [0, 0];
      const at = alias.range?.[0] ?? 0;
      if (target && at >= start && at < end) {
        const { line, col } = lines.linePos(at);
        out.push({ file, line, col, path: '', message: `YAML: alias *${alias.source} is inside the node &${alias.source} it names: a circular value, which a spec cannot hold` });
      }
    },
  });
  return out;
}

export interface ParseOptions {
  /** The spec root: `extends` may only reach files inside it. Default: the folder of `file`. */
  root?: string;
  /** The files extending this one (cycle detection). */
  seen?: readonly string[];
}

export function parseSource(file: string, text: string, opts: ParseOptions = {}): { source: SpecSource; diagnostics: Diagnostic[] } {
  const seen = opts.seen ?? [];
  const root = opts.root ?? dirname(file);
  const diagnostics: Diagnostic[] = [];
  let value: unknown;
  let source: SpecSource;
  const known = knownParse(text, specSchemaText);
  if (known !== undefined) {
    // A text the build parsed cleanly: its value is known; the document is parsed only if a diagnostic needs a position.
    value = known;
    source = lazyDocument({ file, text, value, parents: [] });
  } else {
    const { doc, lines } = parseYaml(text);
    for (const err of [...doc.errors, ...doc.warnings]) {
      const pos = err.linePos?.[0] ?? { line: 1, col: 1 };
      diagnostics.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}` });
    }
    const duplicates = doc.errors.length ? [] : [...duplicateKeys(doc, lines, file), ...circularAliases(doc, lines, file)];
    diagnostics.push(...duplicates);
    value = doc.errors.length || duplicates.length ? undefined : yamlValue(doc);
    source = { file, text, doc, lines, value, parents: [] };
  }
  if (isObject(value) && typeof value.extends === 'string') {
    // `extends: other.yaml` inherits every key of that spec (recursively) unless this file sets it.
    const parentFile = resolve(dirname(file), value.extends);
    const here = (message: string) => diagnostics.push(diagnosticAt(source, ['extends'], message));
    let parentText: string | undefined;
    const refusal = extendsRefusal(parentFile, root);
    if (refusal) here(refusal);
    else if ([file, ...seen].includes(parentFile)) here(`extends forms a cycle: ${[parentFile, file, ...seen].join(' → ')}`);
    else {
      try {
        parentText = decodeSpec(readSpecBytes(parentFile));
      } catch (e) {
        // Bad bytes are reported where they are; any other refusal where `extends` names the file.
        if (e instanceof SpecReadError && e.located) diagnostics.push({ file: parentFile, line: e.line, col: e.col, path: '', message: `cannot read: ${e.message}` });
        else here(`cannot read the spec it extends, ${parentFile}: ${(e as Error).message}`);
      }
    }
    if (parentText !== undefined) {
      const parent = parseSource(parentFile, parentText, { root, seen: [file, ...seen] });
      diagnostics.push(...parent.diagnostics);
      const { extends: _ignored, ...own } = value;
      const inherited = parent.source.value;
      // A spec inherits keys: a parent that is not a mapping (a scalar, a list, an empty file) has none to give.
      if (inherited !== undefined && !isObject(inherited)) {
        here(`extends names ${parentFile}, whose content is ${inherited === null ? 'empty' : Array.isArray(inherited) ? 'a list' : `a ${typeof inherited}`}, not a mapping of spec keys`);
      }
      value = inherited === undefined || !isObject(inherited) ? undefined : mergePatch(inherited, own);
      source.parents = [parent.source, ...parent.source.parents];
    } else value = undefined;
    source.value = value;
  }
  return { source, diagnostics };
}

/** The YAML document of a spec text, with line positions. */
export function parseYaml(text: string): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter();
  // prettyErrors adds line/col to every YAML error; duplicate keys are checked separately, in linear time.
  return { doc: parseDocument(text, { lineCounter: lines, prettyErrors: true, strict: true, uniqueKeys: false }), lines };
}

export function yamlValue(doc: Document.Parsed): unknown {
  return doc.toJS({ maxAliasCount: 100 });
}

/** A source whose `doc` and `lines` are parsed from its text on first use. */
function lazyDocument(base: Omit<SpecSource, 'doc' | 'lines'>): SpecSource {
  let parsed: { doc: Document.Parsed; lines: LineCounter } | undefined;
  const get = () => (parsed ??= parseYaml(base.text));
  return Object.defineProperties(base, {
    doc: { get: () => get().doc, enumerable: true },
    lines: { get: () => get().lines, enumerable: true },
  }) as SpecSource;
}

/** Read and parse a spec file (size, file type and UTF-8 checked first: SpecReadError otherwise). */
export async function readSource(file: string, root: string = dirname(file)): Promise<{ source: SpecSource; diagnostics: Diagnostic[] }> {
  return parseSource(file, decodeSpec(readSpecBytes(file)), { root });
}

const keyIndexes = new WeakMap<object, Map<string, { key: unknown; value: unknown }>>();

/** A map's pairs by key, built once per map node: locating thousands of diagnostics stays linear. */
function keyIndex(map: { items: { key: unknown; value: unknown }[] }): Map<string, { key: unknown; value: unknown }> {
  let index = keyIndexes.get(map);
  if (!index) {
    index = new Map();
    for (const it of map.items) {
      const k = isScalar(it.key) ? String(it.key.value) : undefined;
      if (k !== undefined && !index.has(k)) index.set(k, it);
    }
    keyIndexes.set(map, index);
  }
  return index;
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
      const pair = keyIndex(node).get(String(step));
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


/** The YAML node at a key path, in the nearest layer (this spec or one it extends) that has it. */
export function nodeAt(source: SpecSource, path: KeyPath): Node | undefined {
  for (const layer of [source, ...source.parents]) {
    const w = walk(layer, path);
    if (w.complete) return w.node ?? undefined;
  }
  return undefined;
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
