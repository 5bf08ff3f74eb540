/**
 * `validate` finds everything in one pass, in words a person reads (issue 19 §3): schema errors, reference
 * errors and lint findings together; `{expr}` that YAML read as a mapping in bodies and mappings; what an
 * anyOf expected; a circular alias, an oversized file and a scalar `extends` as located errors; a broken
 * spec does not stop the others in preview/test/deliver; a quoted glob expands without a shell.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type CliIO } from '../cli/run.js';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { BUNDLED_SPECS_DIR, checkSpecText } from '../engine/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'si-one-pass-'));
let emu: Emulator;
beforeAll(async () => {
  emu = await startMarketingCloudEmulator({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], cwd = dir): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) }, cwd };
  const code = await run(args, io);
  return { code, out, err };
}

const spec = (send: string, extra = '') => `spec_version: 1
vendor: example
title: Example
version: 1.0.0
config: {type: object, properties: {api_key: {type: string, secret: true}}}
allowed_hosts: [api.example.com]
${extra}send:
${send}`;

const problems = (text: string) => checkSpecText(join(dir, 'example.yaml'), text).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);

describe('validate: every kind of problem in one pass', () => {
  it('a schema error, a reference error, a host outside allowed_hosts and {expr} read as a mapping, all reported together', () => {
    const text = spec(
      `  request:
    method: POST
    url: https://api.other.com/x
    body:
      id: $config.nope
      ts: {$toMillis(timestamp)}
`,
      'bogus_key: 1\n',
    );
    const found = problems(text);
    expect(found).toEqual([
      expect.stringMatching(/^7:1 unknown key 'bogus_key'/),
      expect.stringMatching(/^11:10 host api\.other\.com is not in allowed_hosts/),
      expect.stringMatching(/^13:11 .*\$config\.nope|^13:\d+ .*nope/),
      expect.stringMatching(/^14:11 YAML read \{\$toMillis\(timestamp\)\} as a mapping whose key has no value, not text: it would be sent as \{"\$toMillis\(timestamp\)": null\}; for the expression, quote it: "\$toMillis\(timestamp\)"$/),
    ]);
  });

  it('{expr} read as a mapping is flagged in a valid spec body, and in preset fields; a nested mapping and an explicit null are not', () => {
    expect(problems(spec('  request:\n    method: POST\n    url: https://api.example.com/x\n    body: {ts: {$millis()}}\n'))).toEqual([
      expect.stringMatching(/^11:16 YAML read \{\$millis\(\)\} as a mapping/),
    ]);
    expect(problems(spec('  request:\n    method: POST\n    url: https://api.example.com/x\n    body: {data: {email: properties.email, middle: null, none: }}\n'))).toEqual([]);
    const preset = `presets:\n  default:\n    title: Default\n    events:\n      Order Completed:\n        fields: {total: {properties.total}}\n`;
    expect(problems(spec('  request:\n    method: POST\n    url: https://api.example.com/x\n    body: {a: $fields.total}\n', preset))).toEqual([
      expect.stringMatching(/^12:25 YAML read \{properties\.total\} as a mapping/),
    ]);
  });
});

describe('validate: what a union expected, from the schema', () => {
  it('method: PUSH names the allowed methods and the template form, and what was given', () => {
    expect(problems(spec('  request: {method: PUSH, url: "https://api.example.com/x"}\n'))).toEqual([
      '8:21 must be one of GET, POST, PUT, PATCH, DELETE, or text matching \\{.+\\}; got PUSH (must match pattern "\\{.+\\}")',
    ]);
  });

  it('status: [2xx, 600] says which forms a status takes and why 600 is not one', () => {
    expect(problems(spec('  request: {method: POST, url: "https://api.example.com/x"}\n  success: {status: [2xx, 600]}\n'))).toEqual([
      '9:27 must be an integer from 100 to 599, or text matching ^[1-5]xx$; got 600 (must be <= 599)',
    ]);
  });
});

describe('validate: red-team inputs are located errors, quickly', () => {
  it('a self-referencing alias is a located YAML error, not a crash', async () => {
    writeFileSync(join(dir, 'alias.yaml'), 'spec_version: 1\nz: &z [ *z ]\n');
    const r = await cli(['validate', 'alias.yaml']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('alias.yaml:2:9: YAML: alias *z is inside the node &z it names');
    expect(r.err).toBe('');
  });

  it('a 10 MB spec: refused at the 1 MiB cap with its location, before any YAML parse', async () => {
    writeFileSync(join(dir, 'huge.yaml'), `spec_version: 1\nvendor: huge\nx:\n${'  - aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n'.repeat(230_000)}`);
    const r = await cli(['validate', 'huge.yaml']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^huge\.yaml:1:1: cannot read: \d+ bytes; a spec file may be at most 1048576 bytes \(1 MiB\)$/m);
  });

  it('extends naming a file whose content is a scalar (or a list) is an error at extends', () => {
    writeFileSync(join(dir, 'scalar.yaml'), 'just some text\n');
    writeFileSync(join(dir, 'list.yaml'), '- a\n- b\n');
    const child = (parent: string) => checkSpecText(join(dir, 'child.yaml'), `extends: ${parent}\nvendor: child\n`).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);
    expect(child('scalar.yaml')).toEqual([`1:10 extends names ${join(dir, 'scalar.yaml')}, whose content is a string, not a mapping of spec keys`]);
    expect(child('list.yaml')).toEqual([`1:10 extends names ${join(dir, 'list.yaml')}, whose content is a list, not a mapping of spec keys`]);
  });
});

describe('a quoted glob expands without a shell', () => {
  it("validate 'specs/**/*.yaml' checks the specs and skips partials and pins", async () => {
    const r = await cli(['validate', 'specs/**/*.yaml', '--format', 'json'], ROOT);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { ok: boolean; specs: string[]; skipped: { kind: string }[] };
    expect(report.ok).toBe(true);
    expect(report.specs.sort()).toEqual(['salesforce_marketing_cloud', 'salesforce_marketing_cloud_data_extensions', 'salesforce_marketing_cloud_journey_batch']);
    expect(report.skipped.filter((s) => s.kind === 'partial')).toHaveLength(1);
    expect(report.skipped.filter((s) => s.kind === 'pin').length).toBeGreaterThan(5);
    const none = await cli(['validate', 'nowhere/**/*.yaml'], ROOT);
    expect([none.code, none.err]).toEqual([2, "error: 'nowhere/**/*.yaml' matches no file\n"]);
  });

  it("test 'specs/tests/**/*.yaml' runs the pins it names", async () => {
    const r = await cli(['test', 'specs/tests/salesforce_marketing_cloud/*.yaml'], ROOT);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/identified\.yaml/);
  });
});

describe('one broken spec does not block the others', () => {
  const specs = join(dir, 'specs-with-broken');
  beforeAll(() => {
    cpSync(BUNDLED_SPECS_DIR, specs, { recursive: true });
    writeFileSync(join(specs, 'broken.yaml'), 'spec_version: 1\nvendor: broken_vendor\ntitle: Broken\nversion: 1.0.0\nbogus_key: true\n');
    writeFileSync(join(dir, 'record.json'), readFileSync(join(ROOT, 'examples', 'integration.json')));
    writeFileSync(join(dir, 'event.ndjson'), JSON.stringify(JSON.parse(readFileSync(join(ROOT, 'examples', 'lead-submitted.json'), 'utf8'))) + '\n');
  });
  const warning = "warning: 1 spec file has problems and is not loaded: specs-with-broken/broken.yaml (run 'validate' to see them); using ";

  it('preview works for another vendor, and names the broken file', async () => {
    const r = await cli(['--specs', 'specs-with-broken', 'preview', '--integration', 'record.json', '--event', 'event.ndjson']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('# send\nPOST https://mc-abc123xyz.rest.marketingcloudapis.com/interaction/v1/events');
    expect(r.err).toContain(warning);
  });

  it('deliver delivers, and test runs the pins', async () => {
    const d = await cli(['--specs', 'specs-with-broken', 'deliver', '--integration', 'record.json', '--events', 'event.ndjson', '--json', '--endpoint', emu.url]);
    expect(d.code).toBe(0);
    expect(JSON.parse(d.out.split('\n')[0]!)).toMatchObject({ status: 'delivered' });
    expect(d.err).toContain(warning);
    const t = await cli(['--specs', 'specs-with-broken', 'test']);
    expect(t.code).toBe(0);
    expect(t.err).toContain(warning);
  });

  it('validate still reports the broken spec, and exits 1', async () => {
    const r = await cli(['validate', 'specs-with-broken']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^specs-with-broken\/broken\.yaml:5:1: unknown key 'bogus_key'/m);
  });
});
