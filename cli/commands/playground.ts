/** `playground [--port N] [--specs DIR]`: a local web page to try specs (127.0.0.1 only), until Ctrl-C. */
import type { Command } from 'commander';
import { specsDirs, type Context } from '../context.js';
import { CliError, displayPath, EXIT } from '../io.js';
import { integerOption } from '../options.js';

interface PlaygroundOptions {
  port: number;
}

export function registerPlayground(program: Command, ctx: Context): void {
  program
    .command('playground')
    .description('a local web page (127.0.0.1 only): fill a record from the spec, see the exact requests as you type, send to the bundled emulator')
    .option('--port <n>', 'port to listen on (0: any free port)', integerOption(0, 65535), 8787)
    .action(async (opts: PlaygroundOptions, cmd: Command) => {
      const { io } = ctx;
      const { startPlayground } = await import('../playground/server.js');
      const dirs = specsDirs(ctx, cmd);
      let pg;
      try {
        pg = await startPlayground({ port: opts.port, specs: dirs, display: (f) => displayPath(io, f) });
      } catch (e) {
        throw new CliError(`cannot start the playground on 127.0.0.1:${opts.port}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      io.stdout.write(`playground: ${pg.url}  (specs: ${dirs.map((d) => displayPath(io, d)).join(', ')}; reloads when they change; Ctrl-C to stop)\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await pg.close();
      ctx.exitCode = EXIT.ok;
    });
}
