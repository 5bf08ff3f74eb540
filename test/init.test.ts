/** `init`: a new spec skeleton that validates and whose pin passes at once, for every auth kind; never overwrites. */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
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
