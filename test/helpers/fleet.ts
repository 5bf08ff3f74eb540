/**
 * What the fleet tests share: the CLI run in this process (stdout/stderr captured, env set for the call),
 * bounded waits, files in a scratch folder, worker processes of the built CLI, and generated events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { run } from '../../cli/run.js';
import { leadSubmitted } from './fixtures.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number;
  out: string;
  err: string;
}

/** The CLI in this process; `env` is set for the call only (undefined removes a variable). */
export async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = await run(args, { stdout, stderr });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** Poll `probe` until it gives a value; fail after `ms` naming `what`. */
export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined> | T | undefined, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Write `content` (text as is, anything else as JSON) to `dir/name`; its path. */
export function writeIn(dir: string, name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

/** `n` Lead Submitted events with ids `<prefix>_<i>` and distinct e-mails, as NDJSON text. */
export function leadEvents(prefix: string, n: number, email: (i: number) => string | undefined = (i) => `${prefix}${i}@example.com`): string {
  return (
    Array.from({ length: n }, (_, i) => {
      const e = leadSubmitted();
      e.event_id = `${prefix}_${i}`;
      e.properties = { ...e.properties, email: email(i) };
      return JSON.stringify(e);
    }).join('\n') + '\n'
  );
}

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** The metrics URL the worker logged (with --metrics-port). */
  metricsUrl: Promise<string>;
  /** Resolves once the worker logged that it is consuming. */
  ready: Promise<void>;
}

/** A `worker` process of the built CLI, killed by `children`' owner at the end of the file. */
export function spawnWorker(args: string[], children: ChildProcess[], env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  children.push(child);
  let out = '';
  let err = '';
  let found: (url: string) => void;
  let started: () => void;
  const metricsUrl = new Promise<string>((r) => (found = r));
  const ready = new Promise<void>((r) => (started = r));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    const m = /"metrics":"([^"]+)"/.exec(err);
    if (m) found(m[1]!);
    if (err.includes('"consuming"')) started();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, stdout: () => out, stderr: () => err, metricsUrl, ready };
}
