/**
 * Path arguments that are globs (`'specs/**\/*.yaml'`, quoted so no shell expanded them, or on a system
 * without one): expanded here with tinyglobby, sorted. A path that exists is taken as written, even if
 * its name has glob characters.
 */
import { existsSync } from 'node:fs';
import { glob, isDynamicPattern } from 'tinyglobby';
import { CliError, cwdOf, resolvePath, type CliIO } from './io.js';

/** Each argument as absolute paths: itself, or the files its glob matches (none matching is an error). */
export async function expandPathArgs(io: CliIO, args: readonly string[]): Promise<{ arg: string; path: string }[]> {
  const out: { arg: string; path: string }[] = [];
  for (const arg of args) {
    const abs = resolvePath(io, arg);
    if (existsSync(abs) || !isDynamicPattern(arg)) {
      out.push({ arg, path: abs });
      continue;
    }
    const files = (await glob(arg, { cwd: cwdOf(io), absolute: true, onlyFiles: true, expandDirectories: false, dot: false })).sort();
    if (!files.length) throw new CliError(`'${arg}' matches no file`);
    for (const f of files) out.push({ arg: f, path: f });
  }
  return out;
}
