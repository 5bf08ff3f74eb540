/** `test [paths...]`: run the pins (expected requests per record and event) beside the specs. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadEngine, specsDirs, type Context } from '../context.js';
import { displayPath, EXIT, resolvePath } from '../io.js';
import { pinFiles, runPin } from '../pins.js';
import { safe, safeLines } from '../text.js';

interface TestOptions {
  update?: boolean;
}

export function registerTest(program: Command, ctx: Context): void {
  program
    .command('test')
    .description('check pinned previews (default: the tests/ folder of the specs directory); exit 1 when one differs')
    .argument('[paths...]', 'pin files or directories')
    .option('--update', 'write what each pin produces now as its expectation')
    .action(async (paths: string[], opts: TestOptions, cmd: Command) => {
      const { io } = ctx;
      const targets = paths.length ? paths.map((p) => resolvePath(io, p)) : specsDirs(ctx, cmd).map((d) => join(d, 'tests'));
      const files = await pinFiles(targets);
      if (!files.length) {
        io.stderr.write(safe(`error: no pin files (*.yaml) found in ${targets.map((t) => displayPath(io, t)).join(', ')}`) + '\n');
        ctx.exitCode = EXIT.failed;
        return;
      }
      const engine = await loadEngine(ctx, cmd);
      let failed = 0;
      try {
        for (const file of files) {
          const r = await runPin(engine, file, opts.update ? { update: true } : {});
          const shown = displayPath(io, file);
          if (r.updated) io.stdout.write(safe(`updated  ${shown}`) + '\n');
          else if (r.ok) io.stdout.write(safe(`ok       ${shown}`) + '\n');
          else {
            failed++;
            io.stdout.write(safe(`FAIL     ${shown}${r.description ? ` — ${r.description}` : ''}`) + '\n');
            // A problem may span lines (expected / got): each line escaped, the breaks kept.
            for (const p of r.problems) io.stdout.write(safeLines(`         ${p}`) + '\n');
          }
        }
      } finally {
        engine.close();
      }
      io.stdout.write(`${files.length - failed} passed, ${failed} failed\n`);
      ctx.exitCode = failed ? EXIT.failed : EXIT.ok;
    });
}
