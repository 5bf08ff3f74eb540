#!/usr/bin/env node
// Derives integration-spec-extends.schema.json from integration-spec.schema.json: the same language
// with nothing required and `null` allowed for every key (JSON Merge Patch: null removes an inherited
// key), for files that `extends` another (and partials), which may leave anything out. Editors use it for completion; the engine checks the merged result against the full schema.
// Run `node schemas/derive-extends-schema.mjs` after editing the main schema (a test checks they agree).
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SCHEMA_LISTS = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const SCHEMA_ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains', 'propertyNames'];
const SCHEMA_MAPS = ['properties', '$defs', 'patternProperties'];

function relax(schema) {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'required' && Array.isArray(v)) continue;
    if (k === 'properties') out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, nullable(relax(s))]));
    else if (SCHEMA_MAPS.includes(k)) out[k] = Object.fromEntries(Object.entries(v).map(([name, s]) => [name, relax(s)]));
    else if (SCHEMA_LISTS.includes(k)) out[k] = v.map(relax);
    else if (SCHEMA_ONE.includes(k)) out[k] = relax(v);
    else out[k] = v;
  }
  return out;
}

/** The key may also be `null`, which removes what the file extends; the description stays on top for editors. */
function nullable(schema) {
  if (typeof schema !== 'object' || schema === null) return schema;
  const { description, ...rest } = schema;
  return { ...(description ? { description } : {}), anyOf: [rest, { type: 'null', description: 'Removes the inherited key.' }] };
}

export function deriveExtendsSchema(main) {
  const out = relax(main);
  out.$id = main.$id.replace('integration-spec.schema.json', 'integration-spec-extends.schema.json');
  out.title = `${main.title} (extending another spec)`;
  out.description = `${main.description} This variant requires nothing: it is for specs that \`extends\` another, and for partials.`;
  return out;
}

export const MAIN = fileURLToPath(new URL('./integration-spec.schema.json', import.meta.url));
export const DERIVED = fileURLToPath(new URL('./integration-spec-extends.schema.json', import.meta.url));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const derived = deriveExtendsSchema(JSON.parse(readFileSync(MAIN, 'utf8')));
  writeFileSync(DERIVED, `${JSON.stringify(derived, null, 2)}\n`);
  console.log(`wrote ${DERIVED}`);
}
