/** State shared by the commands of one `run()`: the injected streams, the exit code, the global options. */
import type { Command } from 'commander';
import { BUNDLED_SPECS_DIR, Engine, type EngineOptions } from '../engine/index.js';
import { resolvePath, type CliIO } from './io.js';

export interface Context {
  io: CliIO;
  /** Set by the command that ran. */
  exitCode: number;
}

/** `--specs <dir>` (global), resolved against the working directory; default: the bundled specs. */
export function specsDirs(ctx: Context, cmd: Command): string[] {
  const specs = (cmd.optsWithGlobals() as { specs?: string }).specs;
  return [specs ? resolvePath(ctx.io, specs) : BUNDLED_SPECS_DIR];
}

/** Load every spec (a SpecError, listing every problem, ends the command with exit 2). */
export function loadEngine(ctx: Context, cmd: Command, options: Omit<EngineOptions, 'specs'> = {}): Promise<Engine> {
  return Engine.load({ ...options, specs: specsDirs(ctx, cmd) });
}
