/**
 * Installable as a package, tried as a new user would: pack a copy of the working tree (so `prepack`
 * builds dist/ from scratch), install the tarball into an empty folder, then run the bin, import the
 * library as ESM, and type-check a TypeScript consumer with strict options.
 *
 * The install uses the npm registry for package metadata only (`--prefer-offline`: tarballs come from
 * the local npm cache that `npm ci` filled); no other network.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NPM_ENV = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: readonly string[], cwd: string, timeout = 180_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env: NPM_ENV, timeout, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: string;
let app: string;
let files: string[];
const bin = (...args: string[]): Promise<Run> => sh(join(app, 'node_modules', '.bin', 'signal-integrations'), args, app);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'si-pack-'));
  // A copy of what a fresh clone holds (tracked and new, not ignored files), with the dev dependencies linked.
  const src = join(tmp, 'src');
  const listed = await sh('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], ROOT);
  expect(listed.code, listed.stderr).toBe(0);
  for (const f of listed.stdout.split('\0').filter(Boolean)) {
    await cp(join(ROOT, f), join(src, f), { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e; // deleted in the working tree, not yet committed
    });
  }
  await symlink(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir');
  const packed = await sh('npm', ['pack', '--json', '--pack-destination', tmp], src, 240_000);
  expect(packed.code, packed.stderr).toBe(0);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string; size: number; files: { path: string }[] }[];
  files = info[0]!.files.map((f) => f.path);
  app = join(tmp, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const installed = await sh('npm', ['install', '--prefer-offline', join(tmp, info[0]!.filename)], app, 240_000);
  expect(installed.code, installed.stderr).toBe(0);
}, 600_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the built CLI, engine, emulator, specs with their pins, schemas and examples', () => {
    for (const f of ['dist/cli/main.js', 'dist/engine/index.js', 'dist/engine/index.d.ts', 'dist/emulator/marketing-cloud.js', 'examples/events.ndjson', 'examples/integration.json', 'schemas/integration-spec.schema.json', 'specs/salesforce_marketing_cloud.yaml', 'specs/tests/salesforce_marketing_cloud/lead_submitted_reference.yaml']) {
      expect(files).toContain(f);
    }
  });

  it('does not ship the bench, the tests, source maps or TypeScript sources', () => {
    expect(files.filter((f) => /^dist\/(bench|test)\//.test(f) || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
  });
});

describe('the installed package', () => {
  it('--help lists the commands, --version prints the version', async () => {
    const help = await bin('--help');
    expect(help.code).toBe(0);
    for (const c of ['validate', 'preview', 'deliver', 'test', 'demo']) expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    const version = await bin('--version');
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('validate, test (every pin) and demo pass with the bundled specs and examples', async () => {
    const validate = await bin('validate');
    expect(validate.stdout + validate.stderr).toMatch(/^ok: 3 spec files valid/m);
    expect(validate.code).toBe(0);
    const test = await bin('test');
    expect(test.stdout).toMatch(/^9 passed, 0 failed$/m);
    expect(test.code).toBe(0);
    const demo = await bin('demo');
    expect(demo.stdout).toMatch(/^demo ok:/m);
    expect(demo.code).toBe(0);
  });

  it('imports as ESM: the engine, the emulator, and the schema through the exports map', async () => {
    await writeFile(
      join(app, 'esm.mjs'),
      `import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { Engine, REASONS } from 'signal-integrations';
import { startMarketingCloudEmulator } from 'signal-integrations/emulator';
const schema = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('signal-integrations/schemas/integration-spec.schema.json'), 'utf8'));
const emu = await startMarketingCloudEmulator();
const engine = await Engine.load({ endpoint: emu.url });
const record = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('signal-integrations/package.json').replace('package.json', 'examples/integration.json'), 'utf8'));
const outcome = await engine.createIntegration(record).deliver({ type: 'track', event: 'Lead Submitted', event_id: 'e1', properties: { email: 'a@example.com' }, consent: { marketing: true } });
await engine.shutdown();
await emu.close();
console.log(JSON.stringify({ schema: typeof schema.properties, status: outcome.status, reasons: Object.keys(REASONS).length }));
`,
    );
    const r = await sh(process.execPath, ['esm.mjs'], app);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ schema: 'object', status: 'delivered', reasons: expect.any(Number) });
  });

  it('type-checks a TypeScript consumer with strict options (Outcome.reason is the union of reasons)', async () => {
    await writeFile(
      join(app, 'consumer.ts'),
      `import { Engine, type Outcome, type Reason } from 'signal-integrations';
import type { Emulator } from 'signal-integrations/emulator';

export async function boot(specText: string, emu: Emulator): Promise<Outcome[]> {
  const engine = await Engine.load({ specTexts: [{ file: 'specs/vendor.yaml', text: specText }], endpoint: emu.url });
  const seen: Outcome[] = [];
  engine.on('outcome', (o) => seen.push(o));
  const integration = engine.createIntegration({ vendor: 'vendor', name: 'x', enabled: true, config: {} });
  const outcome = await integration.deliver({ type: 'track', event: 'x' });
  const reason: Reason | undefined = outcome.reason;
  if (reason === 'http_error') seen.push(outcome);
  // @ts-expect-error not one of the reasons
  if (outcome.reason === 'no_such_reason') seen.push(outcome);
  await engine.reload();
  await engine.dispose(integration);
  await engine.shutdown();
  return seen;
}
`,
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          noImplicitOverride: true,
          noEmit: true,
          skipLibCheck: true, // the consumer's own code is what is checked; dependencies' .d.ts are theirs
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const r = await sh(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await readdir(app)).toContain('consumer.ts');
  });
});
