/**
 * The dead-letter file: appended with synchronous writes, so an entry is in the file (the kernel's
 * hands) before its outcome is printed, and a killed process never shows a failure whose dead letter is
 * lost. The first write error (a full disk, /dev/full, a lost mount) is kept: the caller stops reading,
 * and every later failure is counted as not dead-lettered rather than silently dropped.
 */
import { closeSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { deadLetterJson } from './format.js';
import { CliError, describeFsError, displayPath, resolvePath, type CliIO } from './io.js';
import type { LineResult } from './pipeline.js';

export class DeadLetterFile {
  /** Entries written. */
  written = 0;
  /** The first write error, as the operator should read it. */
  error?: string;
  /** Lines that failed but have no dead letter (written after the error). */
  readonly missing: number[] = [];
  private fd: number | undefined;

  private constructor(
    fd: number,
    readonly shown: string,
  ) {
    this.fd = fd;
  }

  /** Open for appending now: an unwritable path is a configuration error, not a late surprise. */
  static open(io: CliIO, file: string, input?: [number, number]): DeadLetterFile {
    const abs = resolvePath(io, file);
    const shown = displayPath(io, abs);
    if (input) {
      let s;
      try {
        s = statSync(abs);
      } catch {
        s = undefined;
      }
      if (s && s.dev === input[0] && s.ino === input[1]) throw new CliError(`--dead-letter '${shown}' is the events file: dead letters must go to another file`);
    }
    let fd: number;
    try {
      fd = openSync(abs, 'a');
      if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    } catch (e) {
      throw new CliError(`cannot write dead-letter file '${shown}': ${describeFsError(e)}`);
    }
    return new DeadLetterFile(fd, shown);
  }

  /** Append one entry; false when it could not be written (now or after an earlier error). */
  write(r: LineResult): boolean {
    if (this.error !== undefined || this.fd === undefined) {
      this.missing.push(r.outcome.line);
      return false;
    }
    const buf = Buffer.from(deadLetterJson(r, new Date()) + '\n', 'utf8');
    try {
      let off = 0;
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
      this.written++;
      return true;
    } catch (e) {
      // A partial entry may be in the file; the next entry starts on a new line only if it was whole.
      this.error = describeFsError(e);
      this.missing.push(r.outcome.line);
      return false;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch (e) {
      this.error ??= describeFsError(e);
    }
    this.fd = undefined;
  }
}
