/**
 * Installable as a package, tried as a new user would: pack a copy of the working tree (so `prepack`
 * builds dist/ from scratch), install the tarball into an empty folder, then run the bin (with shell
 * completion sourced in bash), import the library as ESM and require() it from CommonJS, type-check a
 * TypeScript consumer with strict options, follow every relative link of the shipped README and docs,
 * and grep every packed file for paths of the machine it was built on.
 *
 * The install uses the npm registry for package metadata only (`--prefer-offline`: tarballs come from
 * the local npm cache that `npm ci` filled); no other network.
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokenLinks, relativeLinks } from './helpers/links.js';

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
let installed: string;
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
  const install = await sh('npm', ['install', '--prefer-offline', join(tmp, info[0]!.filename)], app, 240_000);
  expect(install.code, install.stderr).toBe(0);
  installed = join(app, 'node_modules', 'signal-integrations');
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

  it('ships the licence, the changelog and the docs pages', () => {
    for (const f of ['LICENSE', 'README.md', 'CHANGELOG.md', 'docs/spec-language.md', 'docs/tutorial.md', 'docs/events.md', 'docs/cli.md', 'docs/library.md', 'docs/fleet.md', 'docs/architecture.md', 'docs/benchmarks.md', 'docs/api.md']) {
      expect(files).toContain(f);
    }
  });

  it('does not ship the bench, the tests, source maps or TypeScript sources', () => {
    expect(files.filter((f) => /^dist\/(bench|test)\//.test(f) || f.endsWith('.map') || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
  });
});

describe('the installed package', () => {
  it('is MIT-licensed, public, and says which Node versions it needs', async () => {
    const pkg = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { license?: string; private?: boolean; engines?: { node?: string } };
    expect(pkg.license).toBe('MIT');
    expect(pkg.private).toBeUndefined();
    expect(pkg.engines?.node).toBe('>=20.19');
    expect(await readFile(join(installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('every relative link of the shipped README, changelog and docs resolves inside the package', async () => {
    const pages = files.filter((f) => f.endsWith('.md') && (f === 'README.md' || f === 'CHANGELOG.md' || f.startsWith('docs/')));
    expect(pages.length).toBeGreaterThanOrEqual(10);
    let links = 0;
    for (const p of pages) links += relativeLinks(await readFile(join(installed, p), 'utf8')).length;
    expect(links).toBeGreaterThan(40);
    expect(brokenLinks(installed, pages)).toEqual([]);
  });

  it('no packed file names a path of the machine it was built on', async () => {
    const machine = [...new Set(['/work/', '/home/', '/tmp/', '/root/', ROOT, `${homedir()}/`, `${tmpdir()}/`, tmp])];
    const found: string[] = [];
    for (const f of files) {
      const text = await readFile(join(installed, f), 'latin1');
      for (const m of machine) if (text.includes(m)) found.push(`${f}: ${m}`);
    }
    expect(found).toEqual([]);
  });

  it("the schemas' $id is where the npm CDN serves the shipped file", async () => {
    for (const f of files.filter((x) => x.startsWith('schemas/'))) {
      const schema = JSON.parse(await readFile(join(installed, f), 'utf8')) as { $id?: string };
      expect(schema.$id).toBe(`https://cdn.jsdelivr.net/npm/signal-integrations/${f}`);
    }
  });

  it('completion bash, sourced in bash, completes commands and options', async () => {
    const script = await bin('completion', 'bash');
    expect(script.code).toBe(0);
    await writeFile(join(app, 'completion.bash'), script.stdout);
    const ask = async (...words: string[]): Promise<string> => {
      const line = ['signal-integrations', ...words];
      const r = await sh('bash', ['--norc', '--noprofile', '-c', `source completion.bash
fn=$(complete -p signal-integrations | sed -E 's/.*-F ([^ ]+) .*/\\1/')
COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; "$fn"; printf '%s\\n' "\${COMPREPLY[@]}"`], app);
      expect(r.stderr).toBe('');
      return r.stdout.split('\n').filter(Boolean).sort().join(' ');
    };
    expect(await ask('va')).toBe('validate');
    expect(await ask('validate', '--format', '')).toBe('github json text');
  });

  it('--help lists the commands, --version prints the version', async () => {
    const help = await bin('--help');
    expect(help.code).toBe(0);
    for (const c of ['validate', 'preview', 'deliver', 'test', 'demo', 'completion']) expect(help.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
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

  it('require()s from CommonJS: the engine, the emulator, and the schema through the exports map', async () => {
    await writeFile(
      join(app, 'cjs.cjs'),
      `const { readFileSync } = require('node:fs');
const { Engine, REASONS, parseEvent } = require('signal-integrations');
const { startMarketingCloudEmulator } = require('signal-integrations/emulator');
const schema = JSON.parse(readFileSync(require.resolve('signal-integrations/schemas/integration-spec.schema.json'), 'utf8'));
(async () => {
  const emu = await startMarketingCloudEmulator();
  const engine = await Engine.load({ endpoint: emu.url });
  const record = JSON.parse(readFileSync(require.resolve('signal-integrations/package.json').replace('package.json', 'examples/integration.json'), 'utf8'));
  const event = parseEvent({ type: 'track', event: 'Lead Submitted', event_id: 'e1', properties: { email: 'a@example.com' }, consent: { marketing: true } });
  const outcome = await engine.createIntegration(engine.parseRecord(record)).deliver(event);
  await engine.shutdown();
  await emu.close();
  console.log(JSON.stringify({ schema: typeof schema.properties, status: outcome.status, http_status: outcome.http_status, reasons: Object.keys(REASONS).length }));
})();
`,
    );
    const r = await sh(process.execPath, ['cjs.cjs'], app);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ schema: 'object', status: 'delivered', http_status: 201, reasons: expect.any(Number) });
  });

  it('type-checks a TypeScript consumer with strict options (Outcome narrowed on status, typed records and events)', async () => {
    await writeFile(
      join(app, 'consumer.ts'),
      `import { Engine, RecordError, parseEvent, type IntegrationRecord, type Outcome, type Reason, type SignalEvent } from 'signal-integrations';
import type { Emulator } from 'signal-integrations/emulator';

/** Every status handled, each with the fields it always has: no cast, and a new status would not compile. */
export function describe(outcome: Outcome): string {
  switch (outcome.status) {
    case 'delivered': {
      const status: number = outcome.http_status;
      return \`delivered (\${status})\`;
    }
    case 'failed': {
      const reason: Reason = outcome.reason;
      return \`failed: \${reason} \${outcome.message ?? ''}\`;
    }
    case 'skipped': {
      const reason: Reason = outcome.reason;
      return \`skipped: \${reason}\`;
    }
    default: {
      const none: never = outcome;
      return none;
    }
  }
}

export async function boot(specText: string, emu: Emulator, untypedRecord: unknown, untypedEvent: unknown): Promise<Outcome[]> {
  const engine = await Engine.load({ specTexts: [{ file: 'specs/vendor.yaml', text: specText }], endpoint: emu.url });
  const seen: Outcome[] = [];
  engine.on('outcome', (o) => seen.push(o));
  const record: IntegrationRecord = { source_id: 'src', vendor: 'vendor', name: 'x', enabled: true, config: {} };
  const integration = engine.createIntegration(record);
  // @ts-expect-error a record needs source_id
  engine.createIntegration({ vendor: 'vendor', name: 'x', enabled: true, config: {} });
  // @ts-expect-error unknown input goes through parseRecord
  engine.createIntegration(untypedRecord);
  const parsed = engine.parseRecord(untypedRecord);
  if (parsed instanceof RecordError) {
    for (const p of parsed.issues) seen.length += p.path.length + p.keyword.length + p.message.length;
  } else {
    engine.createIntegration(parsed);
  }
  const event: SignalEvent = { type: 'track', event: 'x', event_id: 'e1' };
  const outcome = await integration.deliver(event);
  // @ts-expect-error an event needs event_id
  await integration.deliver({ type: 'track', event: 'x' });
  const checked = parseEvent(untypedEvent);
  if (!(checked instanceof Error)) seen.push(await integration.deliver(checked));
  const reason: Reason | undefined = outcome.reason;
  if (reason === 'http_error') seen.push(outcome);
  if (outcome.status === 'failed' && outcome.reason === 'auth_failed') seen.push(outcome);
  if (outcome.status !== 'delivered') {
    // @ts-expect-error only a delivered outcome is sure to have an http_status
    const status: number = outcome.http_status;
    seen.length += status;
  }
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
