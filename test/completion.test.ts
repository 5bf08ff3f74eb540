/**
 * `completion bash` is sourced in a real bash, which is then asked what it completes (the function the
 * script registers with `complete -F`, run on COMP_WORDS as bash would): commands, subcommands, options,
 * option choices and file names. The script is made from the command tree, so a command added to the
 * CLI is completed too. zsh and fish scripts are checked for their shape (neither shell is installed here).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIN } from './helpers/cli-process.js';

function sh(cmd: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
let script: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'si-completion-'));
  const r = await sh(process.execPath, [MAIN, 'completion', 'bash']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  script = join(dir, 'signal-integrations.bash');
  writeFileSync(script, r.stdout);
  writeFileSync(join(dir, 'events.ndjson'), '');
  writeFileSync(join(dir, 'record.json'), '{}');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What bash completes for a command line whose last word is being typed (`''`: after a space). */
async function complete(...words: string[]): Promise<string[]> {
  const line = ['signal-integrations', ...words];
  const program = `source ${JSON.stringify(script)}
fn=$(complete -p signal-integrations | sed -E 's/.*-F ([^ ]+) .*/\\1/')
COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')})
COMP_CWORD=${line.length - 1}
"$fn"
printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = await sh('bash', ['--norc', '--noprofile', '-c', program], dir);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.split('\n').filter(Boolean).sort();
}

describe('completion bash, sourced in bash', () => {
  it('registers a completion function for signal-integrations', async () => {
    const r = await sh('bash', ['--norc', '--noprofile', '-c', `source ${JSON.stringify(script)}; complete -p signal-integrations`]);
    expect(r.stdout).toMatch(/^complete -F \S+ signal-integrations$/m);
  });

  it('completes the commands, from their first letters', async () => {
    expect(await complete('')).toEqual(expect.arrayContaining(['validate', 'preview', 'deliver', 'test', 'demo', 'worker', 'records', 'completion']));
    expect(await complete('de')).toEqual(['dead-letters', 'deliver', 'demo']);
    // After the global --specs DIR, still the commands.
    expect(await complete('--specs', 'my-specs', 'val')).toEqual(['validate']);
  });

  it("completes a command's options, and the choices of an option that has them", async () => {
    expect(await complete('validate', '--')).toEqual(['--explain', '--format', '--help']);
    expect(await complete('validate', '--format', '')).toEqual(['github', 'json', 'text']);
    expect(await complete('test', '--reporter', 'j')).toEqual(['junit']);
    expect(await complete('deliver', '--dead')).toEqual(['--dead-letter']);
  });

  it('completes subcommands and their own options', async () => {
    expect(await complete('records', '')).toEqual(['list', 'put', 'rm']);
    expect(await complete('records', 'rm', '--p')).toEqual(['--purge']);
    expect(await complete('completion', '')).toEqual(['bash', 'fish', 'zsh']);
  });

  it('completes file names for an option that takes a file, and after an option with its value', async () => {
    expect(await complete('deliver', '--events', 'ev')).toEqual(['events.ndjson']);
    expect(await complete('deliver', '--integration', 'record.json', '--events', '')).toEqual(['events.ndjson', 'record.json', 'signal-integrations.bash']);
    expect(await complete('deliver', '--integration', 'record.json', '--con')).toEqual(['--concurrency']);
  });
});

describe('completion zsh and fish', () => {
  it('zsh loads the same completion through bashcompinit', async () => {
    const r = await sh(process.execPath, [MAIN, 'completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#compdef signal-integrations$/m);
    expect(r.stdout).toMatch(/^autoload -U \+X bashcompinit && bashcompinit$/m);
    expect(r.stdout).toMatch(/^complete -F \S+ signal-integrations$/m);
  });

  it('fish gets one complete line per command and option, choices included', async () => {
    const r = await sh(process.execPath, [MAIN, 'completion', 'fish']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^complete -c signal-integrations -n '__fish_use_subcommand' -a deliver -d /m);
    expect(r.stdout).toMatch(/^complete -c signal-integrations -n '__fish_seen_subcommand_from validate' -l format -x -a 'text json github' /m);
    expect(r.stdout).toMatch(/^complete -c signal-integrations -n '__fish_seen_subcommand_from rm' -l purge /m);
  });

  it('refuses a shell it does not know, naming the ones it does', async () => {
    const r = await sh(process.execPath, [MAIN, 'completion', 'tcsh']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bash, zsh, fish/);
  });
});
