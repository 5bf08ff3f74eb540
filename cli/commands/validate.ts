/** `validate [paths...]`: check spec files, print every problem as file:line:col, exit 1 when any is invalid. */
import type { Command } from 'commander';
import { checkSpecs, formatDiagnostic } from '../../engine/index.js';
import { explainSpec, formatExplanation } from '../../engine/compile/explain.js';
import { displayPath, EXIT, resolvePath, type CliIO } from '../io.js';
import { specsDirs, type Context } from '../context.js';
import { safe } from '../text.js';

export function registerValidate(program: Command, ctx: Context): void {
  program
    .command('validate')
    .description('check integration spec files (default: the specs directory); exit 1 when any is invalid')
    .argument('[paths...]', 'spec files or directories')
    .option('--explain', 'also list every expression and whether it runs compiled or in the JSONata interpreter (and why)')
    .action(async (paths: string[], opts: { explain?: boolean }, cmd: Command) => {
      ctx.exitCode = await validate(ctx.io, paths.length ? paths.map((p) => resolvePath(ctx.io, p)) : specsDirs(ctx, cmd), opts.explain === true);
    });
}

export async function validate(io: CliIO, paths: string[], explain = false): Promise<number> {
  const { specs, diagnostics } = await checkSpecs(paths);
  if (explain) for (const spec of specs.values()) io.stdout.write(formatExplanation(spec.vendor, explainSpec(spec)) + '\n');
  const shown = (f: string): string => displayPath(io, resolvePath(io, f));
  for (const d of diagnostics) io.stdout.write(safe(formatDiagnostic({ ...d, file: shown(d.file) })) + '\n');
  const badFiles = new Set(diagnostics.map((d) => d.file));
  const valid = [...specs.values()].filter((s) => !badFiles.has(s.file)).length;
  const checked = valid + badFiles.size;
  const where = paths.map(shown).join(', ');
  if (checked === 0) {
    io.stderr.write(safe(`error: no spec files (*.yaml, *.yml) found in ${where}`) + '\n');
    return EXIT.failed;
  }
  const s = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (diagnostics.length === 0) {
    io.stdout.write(safe(`ok: ${s(checked, 'spec file')} valid (${[...specs.keys()].join(', ')})`) + '\n');
    return EXIT.ok;
  }
  io.stdout.write(`invalid: ${s(diagnostics.length, 'problem')} in ${s(badFiles.size, 'file')}; ${valid} of ${s(checked, 'spec file')} valid\n`);
  return EXIT.failed;
}
