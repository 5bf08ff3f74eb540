/** The built CLI (`node dist/cli/main.js`, built by test/global-setup.ts) as a subprocess, for tests that need a real process: signals, kill -9, /dev/full. */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface Child {
  proc: ChildProcessByStdio<Writable, Readable, Readable>;
  out: () => string;
  err: () => string;
  /** Resolves with the exit code (or the signal that killed it). */
  exit: Promise<number | NodeJS.Signals>;
  /** Resolves when `test(stdout)` holds (rejects after `ms`, or when the process exits first). */
  waitFor: (test: (out: string) => boolean, ms?: number) => Promise<void>;
}

/** `env`: variables set for the child on top of this process's. */
export function startCli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string> } = {}): Child {
  const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
  let out = '';
  let err = '';
  const watchers: { test: (out: string) => boolean; resolve: () => void }[] = [];
  proc.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
    for (const w of watchers.splice(0)) {
      if (w.test(out)) w.resolve();
      else watchers.push(w);
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  proc.stdin.on('error', () => undefined);
  if (opts.input !== undefined) proc.stdin.end(opts.input);
  else proc.stdin.end();
  const exit = new Promise<number | NodeJS.Signals>((resolve) => proc.on('close', (code, signal) => resolve(code ?? signal ?? -1)));
  // Never leave a child behind, whatever the test does.
  const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
  void exit.then(() => clearTimeout(timer));
  return {
    proc,
    out: () => out,
    err: () => err,
    exit,
    waitFor: (test, ms = 30_000) =>
      new Promise<void>((resolve, reject) => {
        if (test(out)) return resolve();
        const t = setTimeout(() => reject(new Error(`timed out waiting in:\n${out.slice(-2000)}\n---\n${err}`)), ms);
        watchers.push({ test, resolve: () => (clearTimeout(t), resolve()) });
        void exit.then(() => {
          clearTimeout(t);
          if (test(out)) resolve();
          else reject(new Error(`exited before the output expected:\n${out.slice(-2000)}\n---\n${err}`));
        });
      }),
  };
}

/** Run to the end. */
export async function runCli(args: string[], opts: { input?: string | Buffer } = {}): Promise<{ code: number | NodeJS.Signals; out: string; err: string }> {
  const c = startCli(args, opts);
  const code = await c.exit;
  return { code, out: c.out(), err: c.err() };
}

export interface Summary {
  read: number;
  delivered: number;
  skipped: number;
  failed: number;
  dead: number;
  dup: number;
}

export function summaryOf(err: string): Summary {
  const m = /summary: (\d+) lines? read: (\d+) delivered, (\d+) skipped, (\d+) failed, (\d+) dead-lettered, (\d+) possibly duplicated/.exec(err);
  if (!m) throw new Error(`no summary in:\n${err}`);
  const [read, delivered, skipped, failed, dead, dup] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return { read, delivered, skipped, failed, dead, dup };
}

export const jsonLines = <T = Record<string, any>>(text: string): T[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
