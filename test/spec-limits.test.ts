/**
 * Issue 8.4, 8.5, 8.13: what the loader agrees to read. `extends` reaches only regular .yaml/.yml files
 * inside the spec root, checked before reading (it used to read /dev/zero until memory ran out, a FIFO,
 * ../../etc/passwd); spec files are capped at 1 MiB and duplicate keys are found in linear time (40,000
 * keys in one map took a minute); invalid UTF-8 is refused at file:line:col instead of becoming U+FFFD.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, checkSpecs, checkSpecText } from '../engine/index.js';
import { MAX_SPEC_BYTES } from '../engine/load/source.js';
import { MAX_CONFIG_FIELDS } from '../engine/compile/spec.js';
import { within } from './helpers/fixtures.js';

const FIXTURE = readFileSync(new URL('./fixtures/self-contained-spec.yaml', import.meta.url), 'utf8');
const CHILD = readFileSync(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud_journey_batch.yaml'), 'utf8');
const PARTIAL = readFileSync(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), 'utf8');
const PARENT = readFileSync(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8');

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A spec root: `root/` with the journey spec and its partial, plus `outside/` next to it. */
function workspace(): { base: string; root: string } {
  const base = mkdtempSync(join(tmpdir(), 'spec-limits-'));
  dirs.push(base);
  const root = join(base, 'root');
  mkdirSync(join(root, 'partials'), { recursive: true });
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(root, 'partials', 'salesforce_marketing_cloud_auth.yaml'), PARTIAL);
  writeFileSync(join(root, 'salesforce_marketing_cloud.yaml'), PARENT);
  return { base, root };
}

/** The batch spec extending `target`, checked as part of its folder. */
async function extending(target: string, prepare: (ws: { base: string; root: string }) => void = () => {}) {
  const ws = workspace();
  prepare(ws);
  const file = join(ws.root, 'child.yaml');
  writeFileSync(file, CHILD.replace(/^extends: .*$/m, `extends: ${target}`));
  const line = CHILD.split('\n').findIndex((l) => l.startsWith('extends:')) + 1;
  const { diagnostics } = await within(10_000, checkSpecs([ws.root]), `extends: ${target}`);
  return { diagnostics: diagnostics.filter((d) => d.file === file), all: diagnostics, line, ws };
}

describe('extends', () => {
  it('reaches a .yaml file in the spec folder or a subfolder (the bundled layout)', async () => {
    const { all } = await extending('salesforce_marketing_cloud.yaml');
    expect(all).toEqual([]);
  });

  const refused: [string, RegExp, ((ws: { base: string; root: string }) => void)?][] = [
    ['/dev/zero', /must name a \.yaml or \.yml spec file/],
    ['/dev/urandom', /must name a \.yaml or \.yml spec file/],
    ['../../../../../../etc/passwd', /must name a \.yaml or \.yml spec file/],
    ['../outside/parent.yaml', /must stay inside the spec folder/, ({ base }) => writeFileSync(join(base, 'outside', 'parent.yaml'), PARENT)],
    ['partials/zero.yaml', /must stay inside the spec folder .*\/dev\/zero/, ({ root }) => symlinkSync('/dev/zero', join(root, 'partials', 'zero.yaml'))],
    ['partials/escape.yaml', /must stay inside the spec folder/, ({ base, root }) => {
      writeFileSync(join(base, 'outside', 'parent.yaml'), PARENT);
      symlinkSync(join(base, 'outside', 'parent.yaml'), join(root, 'partials', 'escape.yaml'));
    }],
    ['partials/fifo.yaml', /not a regular file \(a FIFO\)/, ({ root }) => execFileSync('mkfifo', [join(root, 'partials', 'fifo.yaml')])],
    ['partials', /must name a \.yaml or \.yml spec file/],
    ['partials/huge.yaml', /2000000 bytes; a spec file may be at most 1048576 bytes/, ({ root }) => writeFileSync(join(root, 'partials', 'huge.yaml'), 'a'.repeat(2_000_000))],
  ];
  for (const [target, message, prepare] of refused) {
    it(`refuses ${target} at the extends line, without reading it`, async () => {
      const { diagnostics, line } = await extending(target, prepare);
      expect(diagnostics).toHaveLength(1);
      expect(diagnostics[0]).toMatchObject({ line, col: 10, path: 'extends' });
      expect(diagnostics[0]!.message).toMatch(message);
    });
  }

  it('checkSpecText keeps extends inside the folder of the file it names', () => {
    const { diagnostics } = checkSpecText('/nonexistent/specs/child.yaml', CHILD.replace(/^extends: .*$/m, 'extends: ../../etc/passwd.yaml'));
    expect(diagnostics.map((d) => d.message).join('\n')).toMatch(/must stay inside the spec folder \/nonexistent\/specs/);
  });
});

describe('spec size and shape', () => {
  it(`a spec file over ${MAX_SPEC_BYTES} bytes is refused before it is parsed`, async () => {
    const { root } = workspace();
    const file = join(root, 'big.yaml');
    writeFileSync(file, FIXTURE + '#'.repeat(MAX_SPEC_BYTES));
    const { diagnostics } = await within(10_000, checkSpecs([file]));
    expect(diagnostics).toEqual([expect.objectContaining({ file, line: 1, col: 1, message: expect.stringMatching(/bytes; a spec file may be at most 1048576 bytes \(1 MiB\)/) })]);
  });

  it('40,000 keys in one map: every unknown key reported, in linear time (was a minute)', async () => {
    const { root } = workspace();
    const file = join(root, 'wide.yaml');
    writeFileSync(file, FIXTURE + Array.from({ length: 40_000 }, (_, i) => `x_${i}: 1`).join('\n') + '\n');
    const started = Date.now();
    const { diagnostics } = await checkSpecs([file]);
    // Generous: the quadratic check took ~60 s here; linear takes well under 2 s on an idle machine.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(diagnostics).toHaveLength(40_000);
    const fixtureLines = FIXTURE.split('\n').length;
    expect(diagnostics[39_999]).toMatchObject({ line: fixtureLines + 39_999, col: 1, message: "unknown key 'x_39999'" });
  });

  it('a 1 MiB spec (30,000 mapping leaves) validates, in linear time', async () => {
    const { root } = workspace();
    const file = join(root, 'long.yaml');
    let n = 30_000;
    const make = (k: number) => FIXTURE.replace('        "...": $fields\n', '        "...": $fields\n' + Array.from({ length: k }, (_, i) => `        f_${i}: properties.email`).join('\n') + '\n');
    while (Buffer.byteLength(make(n)) > MAX_SPEC_BYTES) n -= 500;
    const text = make(n);
    writeFileSync(file, text + '#'.repeat(MAX_SPEC_BYTES - Buffer.byteLength(text) - 1) + '\n'); // exactly the cap
    const started = Date.now();
    const { specs, diagnostics } = await checkSpecs([file]);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(diagnostics).toEqual([]);
    expect(specs.size).toBe(1);
  });

  it(`a config of more than ${MAX_CONFIG_FIELDS} fields is refused (ajv compiles code per field)`, () => {
    const fields = Array.from({ length: MAX_CONFIG_FIELDS + 1 }, (_, i) => `    field_${i}: { type: string }`).join('\n');
    const { diagnostics } = checkSpecText('/specs/wide.yaml', FIXTURE.replace('  properties:\n', `  properties:\n${fields}\n`));
    expect(diagnostics.map((d) => d.message)).toEqual([`config declares ${MAX_CONFIG_FIELDS + 6} fields; a spec may declare at most ${MAX_CONFIG_FIELDS}`]);
  });

  it('a duplicate key is still reported at its line and column', () => {
    const text = FIXTURE.replace('title: Salesforce', 'vendor: again\ntitle: Salesforce');
    const line = text.split('\n').findIndex((l) => l === 'vendor: again') + 1;
    const { diagnostics } = checkSpecText('/specs/dup.yaml', text);
    expect(diagnostics).toEqual([expect.objectContaining({ line, col: 1, message: "YAML: Map keys must be unique ('vendor' is repeated)" })]);
  });
});

describe('invalid UTF-8', () => {
  it('is refused at file:line:col, not loaded with U+FFFD', async () => {
    const { root } = workspace();
    const file = join(root, 'latin1.yaml');
    const text = FIXTURE.replace('title: Salesforce Marketing Cloud Engagement', 'title: Salesforce Marketing Cloud Engagement caf\u00e9');
    const line = text.split('\n').findIndex((l) => l.includes('caf\u00e9')) + 1;
    const col = text.split('\n')[line - 1]!.indexOf('\u00e9') + 1;
    writeFileSync(file, Buffer.from(text, 'latin1')); // é as the single byte 0xE9
    const { specs, diagnostics } = await checkSpecs([file]);
    expect(specs.size).toBe(0);
    expect(diagnostics).toEqual([{ file, line, col, path: '', message: 'cannot read: not valid UTF-8: byte 0xe9 (save the spec as UTF-8)' }]);
  });

  it('in a file another spec extends, is reported in that file', async () => {
    const { all } = await extending('partials/latin1.yaml', ({ root }) => writeFileSync(join(root, 'partials', 'latin1.yaml'), Buffer.concat([Buffer.from(PARENT.replace(/^extends: .*$/m, '')), Buffer.from([0x23, 0xff, 0x0a])])));
    const bad = all.find((d) => d.file.endsWith('latin1.yaml'));
    expect(bad).toMatchObject({ message: 'cannot read: not valid UTF-8: byte 0xff (save the spec as UTF-8)', col: 2 });
  });
});
