/**
 * Specs known good at build time (load/known-specs.ts): loading with the record gives exactly what the
 * full path gives (same specs, bodies, record errors, diagnostics), skips the work it records, and any
 * change to a file, or a file outside the spec root, takes the full path with its full diagnostics.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, Engine, RecordError, checkSpecs, packagePath, type IntegrationRecord } from '../engine/index.js';
import { buildKnownSpecs } from '../engine/load/known-specs-build.js';
import { sha256, useKnownSpecs } from '../engine/load/known-specs.js';
import { readSource } from '../engine/load/source.js';
import { specSchemaText } from '../engine/validate/spec-schema.js';
import type { SignalEvent } from '../engine/run/event.js';

const record = JSON.parse(await readFile(packagePath('examples', 'integration.json'), 'utf8')) as IntegrationRecord;
const events = (await readFile(packagePath('examples', 'events.ndjson'), 'utf8'))
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as SignalEvent);

afterEach(() => useKnownSpecs(undefined));

async function everything(): Promise<unknown> {
  const engine = await Engine.load();
  try {
    const integration = engine.createIntegration(record);
    const previews = [];
    for (const e of events) previews.push(await integration.preview(e).catch((err: Error) => `${err.name}: ${err.message}`));
    let recordError = '';
    try {
      engine.createIntegration({ ...record, config: { ...(record.config as object), event_definition_key: 'has.dot', client_id: '' } });
    } catch (e) {
      recordError = e instanceof RecordError ? e.message : String(e);
    }
    return { vendors: [...engine.specs.keys()].sort(), previews, recordError };
  } finally {
    engine.close();
  }
}

describe('specs known good at build time', () => {
  it('records every shipped spec, and loading with the record gives what the full path gives', async () => {
    const known = await buildKnownSpecs([BUNDLED_SPECS_DIR, packagePath('examples', 'specs')]);
    const { specs } = await checkSpecs([BUNDLED_SPECS_DIR, packagePath('examples', 'specs')]);
    expect(known.valid).toHaveLength(specs.size);
    useKnownSpecs(undefined);
    const full = await everything();
    useKnownSpecs(known);
    const fast = await everything();
    expect(fast).toEqual(full);
    expect((full as { recordError: string }).recordError).toMatch(/event_definition_key/);
  });

  it('takes the full path for a changed byte, and gives its diagnostics with positions', async () => {
    const known = await buildKnownSpecs([BUNDLED_SPECS_DIR]);
    const dir = await mkdtemp(join(tmpdir(), 'known-'));
    try {
      await mkdir(join(dir, 'partials'));
      await copyFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
      const text = await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8');
      // The same text twice (two files, one vendor): the second is refused where its `vendor` key is,
      // a position in a document the record let the loader skip parsing.
      await writeFile(join(dir, 'a.yaml'), text);
      await writeFile(join(dir, 'b.yaml'), text);
      // One changed byte: a status that is not a number.
      await writeFile(join(dir, 'c.yaml'), text.replace('vendor: salesforce_marketing_cloud', 'vendor: c_vendor').replace('status: [201]', 'status: [abc]'));
      useKnownSpecs(undefined);
      const full = await checkSpecs([dir]);
      useKnownSpecs(known);
      const fast = await checkSpecs([dir]);
      expect(fast.diagnostics).toEqual(full.diagnostics);
      expect(fast.diagnostics.map((d) => `${d.file.split('/').pop()}:${d.line}`)).toEqual(expect.arrayContaining(['b.yaml:9', expect.stringMatching(/^c\.yaml:\d+$/)]));
      expect([...fast.specs.keys()]).toEqual(['salesforce_marketing_cloud']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('still refuses an extends outside the spec root, known text or not', async () => {
    const known = await buildKnownSpecs([BUNDLED_SPECS_DIR]);
    const dir = await mkdtemp(join(tmpdir(), 'known-root-'));
    try {
      await mkdir(join(dir, 'specs'));
      await mkdir(join(dir, 'partials'));
      await copyFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
      const text = (await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8')).replace('extends: partials/', 'extends: ../partials/');
      await writeFile(join(dir, 'specs', 'x.yaml'), text);
      useKnownSpecs(known);
      const { diagnostics } = await checkSpecs([join(dir, 'specs')]);
      expect(diagnostics.map((d) => d.message).join('\n')).toMatch(/extends must stay inside the spec folder/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('trusts a record only under the spec schema it was made with', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'known-schema-'));
    try {
      await mkdir(join(dir, 'partials'));
      await copyFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
      // A key the schema refuses but the compiler ignores: only the schema check can catch it.
      const text = `${await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8')}\nunknown_top_level_key: 1\n`;
      await writeFile(join(dir, 'x.yaml'), text);
      useKnownSpecs(undefined);
      const { source } = await readSource(join(dir, 'x.yaml'), dir);
      const forged = { schema: sha256(specSchemaText()), parsed: {}, valid: [sha256(JSON.stringify(source.value))] };
      useKnownSpecs(forged);
      expect((await checkSpecs([dir])).diagnostics).toEqual([]); // the record was trusted: no schema check ran
      useKnownSpecs({ ...forged, schema: 'another schema' });
      expect((await checkSpecs([dir])).diagnostics.map((d) => d.message).join('\n')).toMatch(/unknown_top_level_key/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
