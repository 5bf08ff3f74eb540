/**
 * Authoring: `validate` catches what `deliver` would refuse (with "did you mean"), reports for CI
 * (json, GitHub annotations), reads `-` from stdin, skips partials and pins a glob names, and exits 2
 * for a path that does not exist; `preview` reads `-`; `test --watch` runs the pins again on a change.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { run, type CliIO } from '../cli/run.js';
import { BUNDLED_SPECS_DIR, checkSpecText } from '../engine/index.js';

const ROOT = new URL('..', import.meta.url).pathname;
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'si-authoring-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    cwd: ROOT,
    ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {}),
  };
  const code = await run(args, io);
  return { code, out, err };
}

const spec = (send: string, extra = '') => `spec_version: 1
vendor: example
title: Example
version: 1.0.0
config: {type: object, properties: {api_key: {type: string, secret: true}, region: {type: string}}}
allowed_hosts: [api.example.com, "*.eu.example.com"]
${extra}send:
${send}`;

const problems = (text: string) => checkSpecText(join(dir, 'example.yaml'), text).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);

describe('validate catches what deliver would refuse', () => {
  it('a URL without a scheme', () => {
    expect(problems(spec('  request: {method: POST, url: api.example.com/x}\n'))).toEqual([
      expect.stringMatching(/^8:32 the URL has no scheme: write https:\/\/api\.example\.com\/x/),
    ]);
  });

  it('a literal host outside allowed_hosts (a whole-label placeholder counts as one label)', () => {
    expect(problems(spec('  request: {method: POST, url: "https://{$config.region}.us.example.com/x"}\n'))).toEqual([
      expect.stringMatching(/^8:32 host \{\$config\.region\}\.us\.example\.com is not in allowed_hosts \(api\.example\.com, \*\.eu\.example\.com\).*host_not_allowed/),
    ]);
    // The same shape under an allowed wildcard, and an exact allowed host, are fine.
    expect(problems(spec('  request: {method: POST, url: "https://{$config.region}.eu.example.com/x"}\n'))).toEqual([]);
    expect(problems(spec('  request: {method: POST, url: "https://api.example.com/x?a={$config.region}"}\n'))).toEqual([]);
    // A bare allowed_hosts entry allows the scheme's default port only: another port is refused at run time.
    expect(problems(spec('  request: {method: POST, url: "https://api.example.com:8443/x"}\n'))).toEqual([expect.stringMatching(/^8:32 host api\.example\.com:8443 is not in allowed_hosts/)]);
    // A leading placeholder may render several labels ({x}.example.com could be a.eu.example.com); a host
    // that is one expression, or a placeholder inside a label, is left to the run-time check.
    expect(problems(spec('  request: {method: POST, url: "https://{$config.region}.example.com/x"}\n'))).toEqual([]);
    expect(problems(spec('  request: {method: POST, url: "https://{$config.region & \'.us.example.com\'}/x"}\n'))).toEqual([]);
    expect(problems(spec('  request: {method: POST, url: "https://mc-{$config.region}.us.example.com/x"}\n'))).toEqual([]);
  });

  it('a bare name in a body that is probably a constant, with the event field it may have meant', () => {
    const m = problems(spec('  request:\n    method: POST\n    url: https://api.example.com/x\n    body: {kind: lead, who: user_id, t: tpye, email: properties.email}\n'));
    expect(m).toEqual([
      expect.stringMatching(/^11:18 'lead' reads the event's top-level field 'lead', which Signal events do not have: for the constant string write '"lead"'/),
      expect.stringMatching(/^11:41 'tpye' .*if you meant the event's type, write type$/),
    ]);
  });

  it('{...} in a header value that YAML read as a mapping: quote it', () => {
    const m = problems(spec('  request:\n    method: POST\n    url: https://api.example.com/x\n    headers:\n      X-Key: {$config.api_key}\n'));
    expect(m).toEqual([expect.stringMatching(/^12:14 YAML read \{\$config\.api_key\} as a mapping, not text: quote the value, e.g. "\{\$config\.api_key\}"$/)]);
  });

  it('did you mean: unknown keys, config fields, auth stages and results, variables', () => {
    expect(problems(spec('  requests: {method: POST, url: https://api.example.com/x}\n'))).toContainEqual(expect.stringMatching(/unknown key 'requests' — did you mean 'request'\?/));
    expect(problems(spec('  request: {method: POST, url: "https://api.example.com/{$config.regoin}"}\n'))).toEqual([
      expect.stringMatching(/\$config\.regoin is not a config field .* — did you mean \$config\.region\?$/),
    ]);
    const auth = `auth:
  - name: token
    request: {method: POST, url: https://api.example.com/token, body: {grant_type: client_credentials}}
    result: {access_token: access_token}
    cache_key: [api_key]
`;
    expect(problems(spec('  request: {method: POST, url: "https://api.example.com/{$auth.tokn.access_token}{$auth.token.acess_token}{$confg}"}\n', auth))).toEqual([
      expect.stringMatching(/'client_credentials' reads the input, but nothing is the input here: for the constant string write '"client_credentials"'/),
      expect.stringMatching(/\$auth\.tokn is not an auth stage .* — did you mean \$auth\.token\?$/),
      expect.stringMatching(/\$auth\.token\.acess_token is not a result .* — did you mean \$auth\.token\.access_token\?$/),
      expect.stringMatching(/unknown variable \$confg .* — did you mean \$config\?$/),
    ]);
  });
});

describe('validate for CI and the shell', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, spec('  request: {method: POST, url: api.example.com/x}\n'));

  it('--format github writes one ::error annotation per problem, escaped', async () => {
    const r = await cli(['validate', '--format', 'github', bad]);
    expect(r.code).toBe(1);
    expect(r.out.split('\n')[0]).toBe(
      `::error file=${bad},line=8,col=32,title=spec%3A send.request.url::the URL has no scheme: write https://api.example.com/x (a URL starts with https:// or http://, or with a placeholder that yields a whole origin such as {$auth.login.instance_url})`,
    );
  });

  it('--format json writes one document with every diagnostic', async () => {
    const r = await cli(['validate', '--format', 'json', bad, join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml')]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.out) as { ok: boolean; checked: number; valid: number; specs: string[]; diagnostics: { file: string; line: number; col: number }[] };
    expect(doc).toMatchObject({ ok: false, checked: 2, valid: 1, specs: ['salesforce_marketing_cloud'] });
    expect(doc.diagnostics).toEqual([expect.objectContaining({ file: bad, line: 8, col: 32, path: 'send.request.url' })]);
  });

  it('a path that does not exist is a usage error (exit 2)', async () => {
    const r = await cli(['validate', 'missing.yaml']);
    expect(r.code).toBe(2);
    expect(r.err).toBe("error: 'missing.yaml' does not exist (expected spec files or directories)\n");
  });

  it("'-' reads a spec from stdin (extends resolved from the working directory)", async () => {
    const text = readFileSync(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8').replace('extends: partials/', 'extends: specs/partials/');
    const ok = await cli(['validate', '-'], text);
    expect(ok.out).toBe('ok: 1 spec file valid (salesforce_marketing_cloud)\n');
    expect(ok.code).toBe(0);
    const broken = await cli(['validate', '-'], 'vendor: [');
    expect(broken.out).toMatch(/^<stdin>:1:\d+: YAML/);
    expect(broken.code).toBe(1);
  });

  it('a glob over specs/ skips the partial and the pins instead of reporting them as broken specs', async () => {
    const list = (await import('node:fs')).readdirSync(BUNDLED_SPECS_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.yaml'));
    const r = await cli(['validate', ...list.map((f) => join('specs', f))]);
    expect(r.out).toBe('ok: 3 spec files valid (salesforce_marketing_cloud, salesforce_marketing_cloud_data_extensions, salesforce_marketing_cloud_journey_batch)\n');
    expect(r.err).toBe("note: skipped 1 partial (checked through the specs that extend them) and 9 pins (run 'signal-integrations test')\n");
    expect(r.code).toBe(0);
  });
});

describe('preview -', () => {
  it('reads the event from stdin', async () => {
    const r = await cli(['preview', '--integration', 'examples/integration.json', '--event', '-', '--json'], readFileSync(join(ROOT, 'examples', 'lead-submitted.json'), 'utf8'));
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { stage: string }[]).map((q) => q.stage)).toEqual(['auth.token', 'send']);
  });

  it('reads the integration record from stdin', async () => {
    const r = await cli(['preview', '--integration', '-', '--event', 'examples/lead-submitted.json', '--json'], readFileSync(join(ROOT, 'examples', 'integration.json'), 'utf8'));
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('shh-secret-value');
  });
});

describe('test --watch', () => {
  it('runs the pins again when a pin changes, and stops on SIGINT', async () => {
    const specs = join(dir, 'specs');
    cpSync(BUNDLED_SPECS_DIR, specs, { recursive: true });
    const proc = spawn(process.execPath, [MAIN, '--specs', specs, 'test', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 300 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(re);
    };
    try {
      await waitFor(/^9 passed, 0 failed$/m);
      const pin = join(specs, 'tests', 'salesforce_marketing_cloud', 'identified.yaml');
      writeFileSync(pin, readFileSync(pin, 'utf8').replace('sam.patel@example.com', 'someone.else@example.com'));
      await waitFor(/change detected[\s\S]*8 passed, 1 failed$/m);
    } finally {
      proc.kill('SIGINT');
    }
    expect(await exited).toBe(1); // the last run failed
  });

  it('keeps seeing a pin through atomic saves (temp file renamed over it, as vim, JetBrains and sed -i save)', async () => {
    const specs = join(dir, 'specs-atomic');
    cpSync(BUNDLED_SPECS_DIR, specs, { recursive: true });
    const pin = join(specs, 'tests', 'salesforce_marketing_cloud', 'identified.yaml');
    const good = readFileSync(pin, 'utf8');
    const bad = good.replace('sam.patel@example.com', 'someone.else@example.com');
    const proc = spawn(process.execPath, [MAIN, '--specs', specs, 'test', '--watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    const runs = () => out.split('change detected').length - 1;
    const last = () => [...out.matchAll(/^(\d+ passed, \d+ failed)$/gm)].at(-1)?.[1];
    const waitFor = async (ok: () => boolean, what: string) => {
      for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 100));
      expect(ok(), `${what}; output:\n${out}`).toBe(true);
    };
    const atomicSave = (text: string, n: number) => {
      const tmp = join(specs, 'tests', 'salesforce_marketing_cloud', `.identified.yaml.${n}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, pin);
    };
    try {
      await waitFor(() => last() === '9 passed, 0 failed', 'first run');
      // Three saves in turn, each seen: failing, passing, failing again.
      const versions: [string, string][] = [[bad, '8 passed, 1 failed'], [good, '9 passed, 0 failed'], [bad, '8 passed, 1 failed']];
      for (const [i, [text, summary]] of versions.entries()) {
        const before = runs();
        atomicSave(text, i);
        await waitFor(() => runs() > before && last() === summary, `save ${i + 1} seen`);
      }
    } finally {
      proc.kill('SIGINT');
    }
    expect(await exited).toBe(1);
  });
});
