/**
 * The README is a front page whose first two commands are the ones CI runs, and every relative link of
 * the README, the changelog and the docs pages resolves (file and heading).
 * docs/spec-language.md must not drift from the language: every property name the JSON Schema defines
 * (at any depth) and every top-level key the shipped specs use is explained there as inline code, every
 * outcome reason is listed, and every spec-shaped YAML example parses (complete ones also load cleanly).
 * The relaxed schema for files that `extends` another must be exactly what derive-extends-schema.mjs makes.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { REASONS, checkSpecText, formatDiagnostic } from '../engine/index.js';
import { deriveExtendsSchema } from '../schemas/derive-extends-schema.mjs';
import { brokenLinks, relativeLinks } from './helpers/links.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const DOC = join(root, 'docs', 'spec-language.md');
const doc = readFileSync(DOC, 'utf8');
/** The tutorial's examples are spec examples too (it was the reference's last section). */
const tutorial = readFileSync(join(root, 'docs', 'tutorial.md'), 'utf8');
const readJson = (...parts: string[]): Record<string, unknown> => JSON.parse(readFileSync(join(root, ...parts), 'utf8')) as Record<string, unknown>;
const schema = readJson('schemas', 'integration-spec.schema.json');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * JSON Schema's own vocabulary. `$defs.jsonSchema` (a config field's schema) lists some of these keywords
 * as properties for editor help; they are JSON Schema, not the spec language, so only its non-keyword
 * properties — the custom `secret` — must be documented.
 */
const JSON_SCHEMA_KEYWORDS = new Set(
  (
    '$schema $id $ref $defs $anchor $dynamicRef $dynamicAnchor $comment $vocabulary type enum const multipleOf ' +
    'maximum exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern maxItems minItems uniqueItems ' +
    'maxContains minContains maxProperties minProperties required dependentRequired properties patternProperties ' +
    'additionalProperties propertyNames items prefixItems contains unevaluatedItems unevaluatedProperties ' +
    'allOf anyOf oneOf not if then else dependentSchemas title description default deprecated readOnly ' +
    'writeOnly examples format contentEncoding contentMediaType contentSchema'
  ).split(' '),
);

/** Keywords whose values are data (or prose), never subschemas: not walked. */
const DATA_KEYWORDS = new Set(['examples', 'default', 'const', 'enum', 'description', 'title', 'pattern', '$comment']);

/** Every property name the schema defines, at every depth, with where it is defined (for failure messages). */
function propertyNames(node: Json, at: string, out: Map<string, string>): Map<string, string> {
  if (Array.isArray(node)) {
    node.forEach((n, i) => propertyNames(n, `${at}[${i}]`, out));
    return out;
  }
  if (!isObject(node)) return out;
  const catalogue = at === '#/$defs/jsonSchema';
  for (const [key, value] of Object.entries(node)) {
    if (DATA_KEYWORDS.has(key)) continue;
    if (key === 'properties' && isObject(value)) {
      for (const [name, sub] of Object.entries(value)) {
        if (!(catalogue && JSON_SCHEMA_KEYWORDS.has(name)) && !out.has(name)) out.set(name, `${at}/properties/${name}`);
        propertyNames(sub, `${at}/properties/${name}`, out);
      }
    } else if (key === '$defs' && isObject(value)) {
      for (const [name, sub] of Object.entries(value)) propertyNames(sub, `#/$defs/${name}`, out);
    } else {
      propertyNames(value, `${at}/${key}`, out);
    }
  }
  return out;
}

/** The doc without its fenced code blocks. */
const prose = doc.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, '');
/** Every inline code span of the prose (tables included). */
const inlineCode = new Set([...prose.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
const documented = (name: string): boolean => inlineCode.has(name) || inlineCode.has(`"${name}"`);

/** ```yaml blocks of the doc. */
const yamlBlocks = [...(doc + '\n' + tutorial).matchAll(/^```yaml[ \t]*\n([\s\S]*?)^```[ \t]*$/gm)].map((m) => m[1]!);
/** A block is spec-shaped when, past leading comments, it starts with `spec_version:`, or it mentions `vendor:`. */
const specBlocks = yamlBlocks.filter((b) => b.replace(/^(?:[ \t]*(?:#.*)?\n)*/, '').startsWith('spec_version:') || b.includes('vendor:'));

describe('README.md, CHANGELOG.md and docs/', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const pages = ['README.md', 'CHANGELOG.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  it('the README starts with the two commands, and CI runs exactly its test command', () => {
    const first = /^```sh\n([\s\S]*?)^```/m.exec(readme);
    expect(first, 'the first code block').not.toBeNull();
    expect(readme.slice(0, first!.index).replace(/^# .*\n/, '').trim(), 'nothing but the title before the commands').toBe('');
    const commands = first![1]!.split('\n').filter(Boolean).map((l) => l.replace(/\s+#.*$/, '').trim());
    expect(commands).toEqual(['npm install && npm start', 'npm test']);
    const ci = readFileSync(join(root, '.ci', 'run'), 'utf8').trim().split('\n');
    expect(ci.at(-1)).toBe(commands[1]);
  });

  it('the README is a front page: short, with a first-spec path and a link to every docs page', () => {
    expect(readme.split('\n').length).toBeLessThan(120);
    expect(readme).toMatch(/^## Write your first spec/m);
    const linked = new Set(relativeLinks(readme).map((l) => l.split('#')[0]));
    const missing = pages.filter((p) => p.startsWith('docs/') && !linked.has(p));
    expect(missing, 'docs pages the README does not link').toEqual([]);
  });

  it('every relative link resolves to a file of the repository, and every #anchor to a heading', () => {
    expect(pages.length).toBeGreaterThanOrEqual(8);
    expect(pages.flatMap((p) => relativeLinks(readFileSync(join(root, p), 'utf8'))).length).toBeGreaterThan(40);
    expect(brokenLinks(root, pages)).toEqual([]);
  });

  it('the link check catches a broken link (sanity check of the test itself)', () => {
    expect(existsSync(join(root, 'docs', 'no-such-page.md'))).toBe(false);
    const broken = brokenLinks(join(root, 'test', 'fixtures', 'links'), ['page.md']);
    expect(broken).toEqual(['page.md: missing.md (no such file)', 'page.md: page.md#nowhere (no heading #nowhere)', 'page.md: ../../outside.md (outside the package)']);
  });
});

describe('docs/spec-language.md', () => {
  const names = propertyNames(schema as Json, '#', new Map());

  it('the schema walk finds the language (sanity check of the test itself)', () => {
    for (const n of ['extends', 'spec_version', 'cache_key', 'message_contains', 'max_in_flight', 'interval_ms', 'secret', '...', 'keep', 'encoding']) {
      expect(names.has(n), n).toBe(true);
    }
    // The JSON-Schema keyword catalogue of a config field is not the spec language.
    expect(names.has('pattern')).toBe(false);
    expect(names.has('examples')).toBe(false);
  });

  it('explains every property name of the schema, at every depth, as inline code', () => {
    const missing = [...names].filter(([name]) => !documented(name)).map(([name, where]) => `${name} (${where})`);
    expect(missing, `not documented as \`name\`: ${missing.join(', ')}`).toEqual([]);
  });

  it('explains every top-level key the shipped specs use, as inline code', () => {
    const specsDir = join(root, 'specs');
    const files = readdirSync(specsDir).filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const file of files) {
      const value = parse(readFileSync(join(specsDir, file), 'utf8')) as unknown;
      expect(isObject(value), file).toBe(true);
      for (const key of Object.keys(value as object)) if (!documented(key)) missing.push(`${key} (specs/${file})`);
    }
    expect(missing, `not documented as \`key\`: ${missing.join(', ')}`).toEqual([]);
  });

  it('lists every outcome reason the engine defines', () => {
    const missing = Object.values(REASONS).filter((r) => !documented(r));
    expect(missing).toEqual([]);
    for (const r of ['item_rejected', 'item_too_large', 'internal_error', 'blank_line']) expect(documented(r), r).toBe(true);
  });

  it('has spec-shaped YAML examples, and every one of them parses', () => {
    expect(specBlocks.length).toBeGreaterThanOrEqual(3);
    for (const block of specBlocks) {
      const parsed = parseDocument(block, { strict: true });
      const problems = [...parsed.errors, ...parsed.warnings].map((e) => e.message.split('\n')[0]);
      expect(problems, `this example does not parse:\n${block}`).toEqual([]);
    }
  });

  it('complete spec examples load without a single diagnostic', () => {
    const complete = specBlocks.filter((b) => {
      const d = parseDocument(b);
      if (d.errors.length) return false; // reported by the test above
      const v = d.toJS() as unknown;
      return isObject(v) && 'spec_version' in v && 'vendor' in v && 'send' in v && !('extends' in v);
    });
    expect(complete.length).toBeGreaterThanOrEqual(1);
    for (const block of complete) {
      const { spec, diagnostics } = checkSpecText(join(root, 'specs', 'doc-example.yaml'), block);
      expect(diagnostics.map(formatDiagnostic), block).toEqual([]);
      expect(spec).toBeDefined();
    }
  });
});

describe('schemas/integration-spec-extends.schema.json', () => {
  it('is exactly what derive-extends-schema.mjs derives from the main schema (run `node schemas/derive-extends-schema.mjs`)', () => {
    expect(readJson('schemas', 'integration-spec-extends.schema.json')).toEqual(deriveExtendsSchema(schema));
  });
});
