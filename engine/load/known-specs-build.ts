/**
 * Build step (`npm run build`): records which shipped spec files parse cleanly and pass every load-time
 * check (load/known-specs.ts), so a fresh process loads them without re-deriving those answers. Only
 * values that survive JSON exactly are recorded (no `.nan`, `.inf` or `-0`): the record is JSON.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { BUNDLED_SPECS_DIR, packagePath } from '../paths.js';
import { specSchemaText } from '../validate/spec-schema.js';
import { KNOWN_SPECS_FILE, sha256, useKnownSpecs, type KnownSpecs } from './known-specs.js';
import { readSource, yamlValue } from './source.js';
import { checkSource, specFilesIn } from './specs.js';

const exactJson = (v: unknown) => isDeepStrictEqual(JSON.parse(JSON.stringify(v) ?? 'null'), v);

export async function buildKnownSpecs(paths: readonly string[]): Promise<KnownSpecs> {
  useKnownSpecs(undefined); // the full path for every file: never trust a previous build's record
  const out: KnownSpecs = { schema: sha256(specSchemaText()), parsed: {}, valid: [] };
  for (const path of paths) {
    for (const { file, root } of await specFilesIn(path)) {
      const { source, diagnostics } = await readSource(file, root);
      const checked = checkSource(source, diagnostics);
      if (!checked.spec || checked.diagnostics.length || !exactJson(source.value)) continue;
      for (const layer of [source, ...source.parents]) {
        const own = yamlValue(layer.doc);
        if (exactJson(own)) out.parsed[sha256(layer.text)] = JSON.stringify(own);
      }
      out.valid.push(sha256(JSON.stringify(source.value)));
    }
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const known = await buildKnownSpecs([BUNDLED_SPECS_DIR, packagePath('examples', 'specs')]);
  writeFileSync(fileURLToPath(new URL(KNOWN_SPECS_FILE, import.meta.url)), `${JSON.stringify(known)}\n`);
}
