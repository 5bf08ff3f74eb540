/**
 * Specs known good at build time. A fresh process spends most of its first load on work whose answer
 * cannot change for the files shipped with the package: parsing their YAML, checking them against the
 * spec schema (a 200 KB validator to load), and compiling their config schemas. `npm run build` records
 * those answers here, keyed by content:
 *
 *   - `parsed`: sha256 of a file's text → its value as JSON, for texts that parsed with no YAML error,
 *     warning or duplicate key (the YAML document itself is parsed again only if a diagnostic needs a
 *     position in it);
 *   - `valid`: sha256 of a merged spec value → it passed every load-time check (shape, hints,
 *     compile, lint) with no diagnostic, under the spec schema whose hash is `schema`.
 *
 * Any other text or value, or another schema, takes the full path: a file edited by one byte is checked
 * as if there were no record at all. The answers depend only on content, never on where a file lies:
 * `extends` is still resolved and checked against the spec root on every load.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface KnownSpecs {
  schema: string;
  parsed: Record<string, string>;
  valid: string[];
}

export const KNOWN_SPECS_FILE = 'known-specs.json';

let known: { data: KnownSpecs; valid: Set<string> } | null | undefined;
let schemaMatches: boolean | undefined;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Use these records (tests, or undefined for none); by default the file the build wrote beside this module. */
export function useKnownSpecs(data: KnownSpecs | undefined): void {
  known = data ? { data, valid: new Set(data.valid) } : null;
  schemaMatches = undefined;
}

function records(currentSchemaText: () => string): { data: KnownSpecs; valid: Set<string> } | undefined {
  if (known === undefined) {
    try {
      useKnownSpecs(JSON.parse(readFileSync(fileURLToPath(new URL(KNOWN_SPECS_FILE, import.meta.url)), 'utf8')) as KnownSpecs);
    } catch {
      known = null; // not built (tests run from sources): every spec takes the full path
    }
  }
  if (!known) return undefined;
  schemaMatches ??= known.data.schema === sha256(currentSchemaText());
  return schemaMatches ? known : undefined;
}

/** The value a known text parses to (a fresh copy), or undefined. */
export function knownParse(text: string, currentSchemaText: () => string): unknown {
  const json = records(currentSchemaText)?.data.parsed[sha256(text)];
  return json === undefined ? undefined : JSON.parse(json);
}

/** Whether this merged spec value passed every load-time check when the package was built. */
export function knownValid(value: unknown, currentSchemaText: () => string): boolean {
  const r = records(currentSchemaText);
  return r !== undefined && r.valid.has(sha256(JSON.stringify(value)));
}
