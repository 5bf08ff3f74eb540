/**
 * Load specs: read → parse YAML → schema-check → compile, for one file or a folder. Every problem in
 * every file is collected before anything throws, so one run shows an author all of them.
 */
import { readdir } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { SpecError, type Diagnostic } from '../errors.js';
import { DEFAULT_FUNCTIONS, type FunctionSet } from '../compile/builtins.js';
import { compileSpec, type CompiledSpec } from '../compile/spec.js';
import { specSchemaText, validateSpecShape } from '../validate/spec-schema.js';
import { knownValid } from './known-specs.js';
import { lintSpec, yamlShapeHints } from '../compile/lint.js';
import { diagnosticAt, parseSource, readSource, SpecReadError, type SpecSource } from './source.js';

export interface LoadResult {
  specs: Map<string, CompiledSpec>;
  diagnostics: Diagnostic[];
}

/** What checking a spec may be given: the functions its expressions may call (default: the built-ins). */
export interface CheckOptions {
  functions?: FunctionSet;
}

export function checkSource(source: SpecSource, parseDiagnostics: Diagnostic[], opts: CheckOptions = {}): { spec?: CompiledSpec; diagnostics: Diagnostic[] } {
  if (parseDiagnostics.length) return { diagnostics: parseDiagnostics };
  const functions = opts.functions ?? DEFAULT_FUNCTIONS;
  // A spec the build saw pass every check below (known-specs.ts): compiled, its config schema when first used.
  if (knownValid(source.value, specSchemaText)) {
    const known = compileSpec(source, { knownValid: true, functions });
    if (known.spec) return known;
  }
  // Everything in one pass: text that YAML read as a mapping (said so, with what to write, instead of the
  // schema's "must be string"), the schema, the compiler (references, expressions) and the lint (hosts,
  // bare names), so that fixing one kind of problem never reveals another.
  const hints = yamlShapeHints(source);
  const hinted = new Set(hints.map((d) => `${d.file}:${d.line}:${d.col}`));
  const shape = [...hints, ...validateSpecShape(source).filter((d) => !hinted.has(`${d.file}:${d.line}:${d.col}`))];
  let compiled: { spec?: CompiledSpec; diagnostics: Diagnostic[] };
  try {
    compiled = compileSpec(source, { functions });
  } catch (e) {
    // On a shape the schema refused, the compiler may stop early: the schema errors stand.
    if (!shape.length) throw e;
    compiled = { diagnostics: [] };
  }
  let lint: Diagnostic[];
  try {
    lint = lintSpec(source);
  } catch (e) {
    // Likewise: the lint reads any shape, but where the schema already objected its findings may wait.
    if (!shape.length) throw e;
    lint = [];
  }
  if (!shape.length && compiled.spec && !lint.length) return compiled;
  // One report per place: the compiler's where the schema said nothing, the lint's where neither did.
  const place = (d: Diagnostic) => `${d.file}:${d.line}:${d.col}`;
  const diagnostics = [...shape];
  const taken = new Set(shape.map(place));
  diagnostics.push(...compiled.diagnostics.filter((d) => !taken.has(place(d))));
  for (const d of compiled.diagnostics) taken.add(place(d));
  diagnostics.push(...lint.filter((d) => !taken.has(place(d))));
  return { diagnostics: shape.length ? diagnostics.sort((a, b) => a.line - b.line || a.col - b.col) : diagnostics };
}

/** Check one spec given as text (editors, tests). */
export function checkSpecText(file: string, text: string, opts: CheckOptions = {}): { spec?: CompiledSpec; diagnostics: Diagnostic[] } {
  const { source, diagnostics } = parseSource(file, text);
  return checkSource(source, diagnostics, opts);
}

/**
 * Check one spec file. `root` is the spec root (default: the file's folder): `extends` may only reach
 * files inside it.
 */
export async function checkSpecFile(file: string, root?: string, opts: CheckOptions = {}): Promise<{ spec?: CompiledSpec; diagnostics: Diagnostic[] }> {
  let read: Awaited<ReturnType<typeof readSource>>;
  try {
    read = await readSource(file, root);
  } catch (e) {
    const at = e instanceof SpecReadError ? { line: e.line, col: e.col } : { line: 1, col: 1 };
    return { diagnostics: [{ file, ...at, path: '', message: `cannot read: ${(e as Error).message}` }] };
  }
  return checkSource(read.source, read.diagnostics, opts);
}

/** The spec files at a path, with the root their `extends` must stay in: the folder given, or a file's folder. */
export async function specFilesIn(path: string): Promise<{ file: string; root: string }[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries
      .filter((e) => e.isFile() && ['.yaml', '.yml'].includes(extname(e.name)))
      .map((e) => ({ file: join(path, e.name), root: path }))
      .sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return [{ file: path, root: dirname(path) }];
    throw e;
  }
}

/** A spec given as text rather than a file: `file` names it in diagnostics and resolves its `extends`. */
export interface SpecText {
  file: string;
  text: string;
}

/**
 * Check specs at paths (files or folders), and specs given as text, without throwing: every spec that
 * compiled, and every problem.
 */
export async function checkSpecs(paths: readonly string[], texts: readonly SpecText[] = [], opts: CheckOptions = {}): Promise<LoadResult> {
  const specs = new Map<string, CompiledSpec>();
  const diagnostics: Diagnostic[] = [];
  const files: { file: string; root: string }[] = [];
  for (const p of paths) {
    try {
      files.push(...(await specFilesIn(resolve(p))));
    } catch (e) {
      diagnostics.push({ file: p, line: 1, col: 1, path: '', message: `cannot read: ${(e as Error).message}` });
    }
  }
  const seen = new Set<string>();
  const inputs: { file: string; root?: string; text?: string }[] = [...files, ...texts.map((t) => ({ file: resolve(t.file), text: t.text }))];
  for (const { file, root, text } of inputs) {
    const r = text === undefined ? await checkSpecFile(file, root, opts) : checkSpecText(file, text, opts);
    // A problem in a shared partial would otherwise be reported once per spec that extends it (its
    // wording may differ slightly per spec, e.g. the list of declared fields): one report per place.
    for (const d of r.diagnostics) {
      const key = `${d.file}:${d.line}:${d.col}:${d.path}`;
      if (!seen.has(key)) diagnostics.push(d);
      seen.add(key);
    }
    if (!r.spec) continue;
    const other = specs.get(r.spec.vendor);
    if (other) {
      const { source } = text === undefined ? await readSource(file, root) : parseSource(file, text);
      diagnostics.push(diagnosticAt(source, ['vendor'], `vendor '${r.spec.vendor}' is already defined by ${other.file}`));
      continue;
    }
    specs.set(r.spec.vendor, r.spec);
  }
  return { specs, diagnostics };
}

/** Load specs for use: throws a SpecError listing every problem when any file is bad. */
export async function loadSpecs(paths: readonly string[], texts: readonly SpecText[] = [], opts: CheckOptions = {}): Promise<Map<string, CompiledSpec>> {
  const { specs, diagnostics } = await checkSpecs(paths, texts, opts);
  if (diagnostics.length) throw new SpecError(diagnostics);
  return specs;
}
