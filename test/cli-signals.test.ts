/**
 * The built CLI as a subprocess (`node dist/cli/main.js`, built by test/global-setup.ts) against an
 * in-process emulator: interruption of `deliver`, and `mock` until a signal.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';

const MAIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const LINES = 200;

let emu: Emulator;
let dir: string;
let recordFile: string;
let eventsFile: string;

interface Child {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  out: () => string;
  err: () => string;
  /** Resolves with the exit code (or the signal that killed it). */
  exit: Promise<number | NodeJS.Signals>;
  /** Resolves when stdout contains a match (rejects after `ms`). */
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
}

function start(args: string[]): Child {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const watchers: { re: RegExp; resolve: () => void }[] = [];
  proc.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of watchers.splice(0)) {
      if (w.re.test(out)) w.resolve();
      else watchers.push(w);
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<number | NodeJS.Signals>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  // Never leave a child behind, whatever the test does.
  const timer = setTimeout(() => proc.kill('SIGKILL'), 50_000);
  void exit.then(() => clearTimeout(timer));
  return {
    proc,
    out: () => out,
    err: () => err,
    exit,
    waitFor: (re, ms = 20_000) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(out)) return resolve();
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re} in:\n${out}\n---\n${err}`)), ms);
        watchers.push({ re, resolve: () => (clearTimeout(t), resolve()) });
        void exit.then(() => {
          clearTimeout(t);
          if (re.test(out)) resolve();
          else reject(new Error(`exited before ${re}:\n${out}\n---\n${err}`));
        });
      }),
  };
}

function summary(err: string): { read: number; delivered: number; skipped: number; failed: number; dead: number } {
  const m = /summary: (\d+) lines? read: (\d+) delivered, (\d+) skipped, (\d+) failed, (\d+) dead-lettered/.exec(err);
  if (!m) throw new Error(`no summary in:\n${err}`);
  const [read, delivered, skipped, failed, dead] = m.slice(1).map(Number) as [number, number, number, number, number];
  return { read, delivered, skipped, failed, dead };
}

const jsonLines = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Json);

beforeAll(async () => {
  emu = await startMarketingCloudEmulator({ faults: { slow: 1, slow_ms: 300 } });
  dir = mkdtempSync(join(tmpdir(), 'si-signals-'));
  recordFile = join(dir, 'record.json');
  writeFileSync(recordFile, JSON.stringify(referenceRecord()));
  const lines: string[] = [];
  for (let i = 1; i <= LINES; i++) {
    if (i % 50 === 0) lines.push(''); // a few blank lines: skipped
    else lines.push(JSON.stringify({ ...leadSubmitted(), event_id: `evt_sig_${i}` }));
  }
  eventsFile = join(dir, 'events.ndjson');
  writeFileSync(eventsFile, lines.join('\n') + '\n');
});

afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('deliver, interrupted', () => {
  it('SIGINT: stops reading, lets in-flight deliveries finish, dead-letters the rest as interrupted, exits 130', async () => {
    emu.setFaults({ slow: 1, slow_ms: 300 });
    const dead = join(dir, 'dead-int.ndjson');
    const child = start(['deliver', '--integration', recordFile, '--events', eventsFile, '--endpoint', emu.url, '--json', '--concurrency', '4', '--dead-letter', dead]);
    await child.waitFor(/\n/);
    child.proc.kill('SIGINT');
    expect(await child.exit).toBe(130);

    const s = summary(child.err());
    expect(s.read).toBeGreaterThan(0);
    expect(s.read).toBeLessThan(LINES); // stopped reading
    expect(s.delivered + s.skipped + s.dead).toBe(s.read);
    expect(s.failed).toBe(s.dead);
    expect(s.dead).toBeGreaterThan(0); // the read-ahead that had not started
    expect(child.err()).toMatch(new RegExp(`interrupted by SIGINT: stopped reading after line ${s.read};.*Resume from line ${s.read + 1}\\.`));

    const outcomes = jsonLines(child.out());
    expect(outcomes).toHaveLength(s.read);
    expect(outcomes.map((o) => o.line).sort((a, b) => a - b)).toEqual(Array.from({ length: s.read }, (_, i) => i + 1));
    const deadLetters = jsonLines(readFileSync(dead, 'utf8'));
    expect(deadLetters).toHaveLength(s.dead);
    for (const d of deadLetters) {
      expect(d.dead_letter.reason).toBe('interrupted');
      expect(d.event.event_id).toMatch(/^evt_sig_\d+$/);
    }
    // In-flight deliveries finished within the grace period: exactly the delivered events reached the emulator.
    expect(emu.events()).toHaveLength(s.delivered);

    // Resuming: the dead letters go through once fed back.
    emu.setFaults({});
    emu.reset();
    let err = '';
    const code = await run(['deliver', '--integration', recordFile, '--events', dead, '--endpoint', emu.url, '--json'], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => ((err += t), true) },
    });
    expect(code).toBe(0);
    expect(summary(err)).toMatchObject({ read: s.dead, delivered: s.dead });
  });

  it('SIGTERM with --shutdown-timeout 0: in-flight deliveries are aborted and dead-lettered too', async () => {
    emu.setFaults({ slow: 1, slow_ms: 1500, apply_to: ['events'] });
    emu.reset();
    const dead = join(dir, 'dead-term.ndjson');
    const child = start([
      'deliver', '--integration', recordFile, '--events', eventsFile, '--endpoint', emu.url,
      '--concurrency', '3', '--dead-letter', dead, '--shutdown-timeout', '0',
    ]);
    // Wait until deliveries are in flight (the emulator has their requests), then interrupt.
    for (let i = 0; i < 200 && emu.requests.filter((r) => r.path === '/interaction/v1/events').length < 3; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(130);
    const s = summary(child.err());
    expect(s.delivered + s.skipped + s.dead).toBe(s.read);
    expect(child.err()).toMatch(/interrupted by SIGTERM: .* (\d+) aborted/);
    const deadLetters = jsonLines(readFileSync(dead, 'utf8'));
    expect(deadLetters).toHaveLength(s.dead);
    expect(deadLetters.every((d) => d.dead_letter.reason === 'interrupted')).toBe(true);
    expect(deadLetters.some((d) => /^aborted: still in flight/.test(d.dead_letter.message))).toBe(true);
    expect(child.out().trim().split('\n')).toHaveLength(s.read);
  });
});

describe('mock', () => {
  it('serves until SIGTERM; deliver --endpoint works against it; exits 0', async () => {
    const child = start(['mock', '--port', '0']);
    await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.out())![1]!;
    expect(child.out()).toContain(`--endpoint ${url}`);
    let err = '';
    const code = await run(['deliver', '--integration', recordFile, '--events', new URL('../examples/events.ndjson', import.meta.url).pathname, '--endpoint', url], {
      stdout: { write: () => true },
      stderr: { write: (t: string) => ((err += t), true) },
    });
    expect(code).toBe(1); // the example without an email
    expect(summary(err)).toMatchObject({ read: 6, delivered: 3 });
    await child.waitFor(/POST \/interaction\/v1\/events/);
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    expect(child.err()).toMatch(/SIGTERM: emulator stopped after \d+ requests/);
    expect(child.out()).not.toContain('shh-secret-value');
    expect(child.out()).not.toMatch(/eyJhbGciOi/);
  });
});
