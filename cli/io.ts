/**
 * What every command shares: the streams it talks to (injected, so tests run commands in-process),
 * the one error type that carries an exit code, and file helpers whose messages never quote a file's
 * content (an integration record holds secrets).
 */
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { SignalError } from '../engine/errors.js';
import { parseJsonSafely } from '../engine/run/event-line.js';
import type { Emulator } from '../emulator/marketing-cloud.js';

/** Anything with `write` (process.stdout, a PassThrough, a test collector). */
export interface Output {
  write(chunk: string): boolean;
  /** Present on Node writables: true when the caller should wait for 'drain'. */
  readonly writableNeedDrain?: boolean;
  once?(event: 'drain', listener: () => void): unknown;
}

export interface CliIO {
  stdout: Output;
  stderr: Output;
  /** Needed only for `--events -`. */
  stdin?: Readable;
  /** Base of relative paths (default process.cwd()). */
  cwd?: string;
  /** Test seams: observe what commands start (e.g. the demo's emulator, to know the tokens it issued). */
  hooks?: { emulatorStarted?: (emu: Emulator) => void };
}

/** Exit codes, in one place. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  /** `preview`: deliver would skip the event (disabled, not forwarded, consent missing); the reason is printed. */
  skipped: 3,
  interrupted: 130,
} as const;

/** A failure the CLI reports as `error: <message>` and the given exit code (default: usage/configuration). */
export class CliError extends SignalError {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = EXIT.usage) {
    super(exitCode === EXIT.usage ? 'cli.usage' : 'cli.failed', message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function cwdOf(io: CliIO): string {
  return io.cwd ?? process.cwd();
}

export function resolvePath(io: CliIO, p: string): string {
  return resolve(cwdOf(io), p);
}

/** A path as the operator should read it: relative when it sits under the working directory. */
export function displayPath(io: CliIO, p: string): string {
  if (!isAbsolute(p)) return p;
  const cwd = cwdOf(io);
  if (p === cwd) return '.';
  return p.startsWith(cwd.endsWith(sep) ? cwd : cwd + sep) ? relative(cwd, p) : p;
}

/** Resolves once the output can take more (immediately when it never pushed back). */
export function drained(out: Output): Promise<void> {
  if (!out.writableNeedDrain || !out.once) return Promise.resolve();
  return new Promise((r) => out.once!('drain', r));
}

function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENOSPC':
      return 'no space left on device (ENOSPC)';
    case 'EDQUOT':
      return 'disk quota exceeded (EDQUOT)';
    case 'EROFS':
      return 'read-only file system (EROFS)';
    case 'EIO':
      return 'input/output error (EIO)';
    default:
      return code ?? (e instanceof Error ? e.message : String(e));
  }
}

const MAX_JSON_FILE_BYTES = 16 * 1024 * 1024;

/**
 * Read and parse a JSON file given on the command line. Every problem is a CliError (exit 2) naming the
 * file and what is wrong — a position, never an excerpt, since the file may hold secrets.
 */
export async function readJsonFile(io: CliIO, path: string, what: string): Promise<unknown> {
  const abs = resolvePath(io, path);
  const shown = displayPath(io, abs);
  let text: string;
  try {
    const s = await stat(abs);
    if (s.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    if (s.size > MAX_JSON_FILE_BYTES) throw new CliError(`cannot read ${what} '${shown}': larger than ${MAX_JSON_FILE_BYTES} bytes`);
    text = await readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read ${what} '${shown}': ${describeFsError(e)}`);
  }
  const parsed = parseJsonSafely(text);
  if (!parsed.ok) throw new CliError(`${what} '${shown}' is not usable: ${parsed.message}`);
  return parsed.value;
}

/** Raw bytes of a small file given on the command line. */
export async function readSmallFile(io: CliIO, path: string, what: string): Promise<Uint8Array> {
  const abs = resolvePath(io, path);
  try {
    const s = await stat(abs);
    if (s.isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    if (s.size > MAX_JSON_FILE_BYTES) throw new CliError(`cannot read ${what} '${displayPath(io, abs)}': larger than ${MAX_JSON_FILE_BYTES} bytes`);
    return await readFile(abs);
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read ${what} '${displayPath(io, abs)}': ${describeFsError(e)}`);
  }
}

export { describeFsError };
