/** State shared by the commands of one `run()`: the injected streams, the exit code, the global options. */
import type { Command } from 'commander';
import type { Engine, EngineOptions } from '../engine/index.js';
import { BUNDLED_SPECS_DIR } from '../engine/paths.js';
import { displayPath, resolvePath, type CliIO } from './io.js';
import { safe } from './text.js';

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

/**
 * Load the specs for `preview`, `test`, `deliver` (and the fleet's commands). One broken spec does not
 * stop the others: it is named on stderr (`validate` shows its problems) and left out, and the command
 * goes on with every spec that loads. Only when none loads does the SpecError, listing every problem,
 * end the command with exit 2.
 */
export async function loadEngine(ctx: Context, cmd: Command, options: Omit<EngineOptions, 'specs'> = {}): Promise<Engine> {
  const { Engine, SpecError, checkSpecs } = await import('../engine/index.js');
  const dirs = specsDirs(ctx, cmd);
  try {
    return await Engine.load({ ...options, specs: dirs });
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    const { specs, diagnostics } = await checkSpecs(dirs);
    const broken = [...new Set(diagnostics.map((d) => d.file))];
    const good = [...specs.values()].filter((s) => !broken.includes(s.file));
    if (!good.length) throw e;
    const n = broken.length;
    ctx.io.stderr.write(
      safe(
        `warning: ${n} spec file${n === 1 ? ' has' : 's have'} problems and ${n === 1 ? 'is' : 'are'} not loaded: ${broken.map((f) => displayPath(ctx.io, f)).join(', ')} ` +
          `(run 'validate' to see them); using ${good.map((s) => s.vendor).join(', ')}`,
      ) + '\n',
    );
    return Engine.load({ ...options, specs: good.map((s) => s.file) });
  }
}
