/** `init`: a new spec skeleton that validates and whose pin passes at once, for every auth kind; never overwrites. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { selfCommand, titleOf } from '../cli/commands/init.js';
import { run, type CliIO } from '../cli/run.js';
import { packagePath } from '../engine/index.js';

const dir = mkdtempSync(join(tmpdir(), 'si-init-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) }, cwd: dir };
  return { code: await run(args, io), out, err };
}

describe('init', () => {
  for (const auth of ['none', 'api_key', 'oauth_client_credentials']) {
    for (const batch of [false, true]) {
      const vendor = `acme_${auth}${batch ? '_batched' : ''}`;
      it(`--auth ${auth}${batch ? ' --batch' : ''}: validates, its pin passes, the modeline points at the schema`, async () => {
        const made = await cli(['init', vendor, '--auth', auth, ...(batch ? ['--batch'] : [])]);
        expect(made.err).toBe('');
        expect(made.code).toBe(0);
        const specFile = join(dir, 'specs', `${vendor}.yaml`);
        const text = readFileSync(specFile, 'utf8');
        const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text);
        expect(resolve(dirname(specFile), modeline![1]!)).toBe(packagePath('schemas', 'integration-spec.schema.json'));
        const validate = await cli(['validate', specFile]);
        expect(validate.out).toBe(`ok: 1 spec file valid (${vendor})\n`);
        const test = await cli(['--specs', 'specs', 'test', join('specs', 'tests', vendor)]);
        expect(test.out).toMatch(/^1 passed, 0 failed$/m);
        expect(test.code).toBe(0);
        const pin = readFileSync(join(dir, 'specs', 'tests', vendor, 'lead_submitted.yaml'), 'utf8');
        expect(pin).toContain(batch ? '/v1/events/batch' : '/v1/events');
        if (auth !== 'none') expect(pin).toContain('[redacted]');
        expect(pin).not.toMatch(/example-api-key|example-client-secret/);
      });
    }
  }

  it('refuses to overwrite, and leaves the files as they were', async () => {
    expect((await cli(['init', 'acme_once'])).code).toBe(0);
    const spec = join(dir, 'specs', 'acme_once.yaml');
    const before = readFileSync(spec, 'utf8');
    const again = await cli(['init', 'acme_once', '--auth', 'none']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^error: not overwriting what exists: specs\/acme_once\.yaml, /);
    expect(readFileSync(spec, 'utf8')).toBe(before);
  });

  it('refuses a vendor name the spec language does not allow (usage error)', async () => {
    const r = await cli(['init', 'Acme-CRM']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/vendor 'Acme-CRM' must be lowercase letters/);
    expect(existsSync(join(dir, 'specs', 'Acme-CRM.yaml'))).toBe(false);
  });
});

describe('init: titles and next steps', () => {
  it('titles: words capitalised, a word without a vowel or a common acronym in capitals', async () => {
    expect(titleOf('acme_crm')).toBe('Acme CRM');
    expect(titleOf('hub_sms_api')).toBe('Hub SMS API');
    expect(titleOf('b2b_store')).toBe('B2B Store');
    expect((await cli(['init', 'zeta_crm', '--auth', 'none'])).code).toBe(0);
    expect(readFileSync(join(dir, 'specs', 'zeta_crm.yaml'), 'utf8')).toMatch(/^title: Zeta CRM$/m);
  });

  it('the next steps are commands that run where the user stands (here: a folder outside the clone, no signal-integrations on PATH)', async () => {
    const made = await cli(['init', 'next_steps', '--auth', 'none']);
    expect(made.code).toBe(0);
    const lines = made.out.split('\n').filter((l) => l.startsWith('  '));
    expect(lines).toHaveLength(3);
    const validate = lines[0]!.trim();
    expect(validate).toBe(`node ${packagePath('dist', 'cli', 'main.js')} --specs specs validate specs/next_steps.yaml`);
    const ran = await new Promise<{ code: number; out: string }>((done) =>
      execFile('/bin/sh', ['-c', validate], { cwd: dir, env: { ...process.env, PATH: dirname(process.execPath) } }, (e, out) => done({ code: e ? Number(e.code ?? 1) : 0, out })),
    );
    expect(ran).toEqual({ code: 0, out: 'ok: 1 spec file valid (next_steps)\n' });
  });

  it('the command: on PATH as signal-integrations, npx when installed in node_modules, node dist/cli/main.js from a clone', () => {
    const root = packagePath();
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(join(root, 'dist', 'cli', 'main.js'), join(bin, 'signal-integrations'));
    expect(selfCommand(dir, root, bin)).toBe('signal-integrations');
    expect(selfCommand('/srv/app', '/srv/app/node_modules/signal-integrations', '')).toBe('npx signal-integrations');
    expect(selfCommand(root, root, '')).toBe('node dist/cli/main.js');
    expect(selfCommand(dir, root, '')).toBe(`node ${join(root, 'dist', 'cli', 'main.js')}`);
  });
});
