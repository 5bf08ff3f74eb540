/**
 * `test [paths...]`: run the pins (expected requests per record and event) beside the specs.
 * `--watch` runs them again whenever a spec or a pin changes, until Ctrl-C.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadEngine, specsDirs, type Context } from '../context.js';
import { displayPath, EXIT, resolvePath } from '../io.js';
import { pinFiles, runPin } from '../pins.js';

interface TestOptions {
  update?: boolean;
  watch?: boolean;
}

export function registerTest(program: Command, ctx: Context): void {
  program
    .command('test')
    .description('check pinned previews (default: the tests/ folder of the specs directory); exit 1 when one differs')
    .argument('[paths...]', 'pin files or directories')
    .option('--update', 'write what each pin produces now as its expectation')
    .option('--watch', 'run again whenever a spec or a pin changes, until Ctrl-C')
    .action(async (paths: string[], opts: TestOptions, cmd: Command) => {
      const targets = paths.length ? paths.map((p) => resolvePath(ctx.io, p)) : specsDirs(ctx, cmd).map((d) => join(d, 'tests'));
      ctx.exitCode = await runPins(ctx, cmd, targets, opts);
      if (opts.watch) ctx.exitCode = await watchPins(ctx, cmd, targets, opts);
    });
}

async function runPins(ctx: Context, cmd: Command, targets: string[], opts: TestOptions): Promise<number> {
  const { io } = ctx;
  const files = await pinFiles(targets);
  if (!files.length) {
    io.stderr.write(`error: no pin files (*.yaml) found in ${targets.map((t) => displayPath(io, t)).join(', ')}\n`);
    return EXIT.failed;
  }
  const engine = await loadEngine(ctx, cmd);
  let failed = 0;
  try {
    for (const file of files) {
      const r = await runPin(engine, file, opts.update ? { update: true } : {});
      const shown = displayPath(io, file);
      if (r.updated) io.stdout.write(`updated  ${shown}\n`);
      else if (r.ok) io.stdout.write(`ok       ${shown}\n`);
      else {
        failed++;
        io.stdout.write(`FAIL     ${shown}${r.description ? ` — ${r.description}` : ''}\n`);
        for (const p of r.problems) io.stdout.write(`         ${p}\n`);
      }
    }
  } finally {
    engine.close();
  }
  io.stdout.write(`${files.length - failed} passed, ${failed} failed\n`);
  return failed ? EXIT.failed : EXIT.ok;
}

/** Run the pins again on every change under the specs and the pin targets; resolves on SIGINT/SIGTERM. */
async function watchPins(ctx: Context, cmd: Command, targets: string[], opts: TestOptions): Promise<number> {
  const { io } = ctx;
  let code = ctx.exitCode;
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  let running = Promise.resolve();
  const rerun = () => {
    clearTimeout(timer);
    // Editors write a file in several steps: run once the burst is over.
    timer = setTimeout(() => {
      running = running.then(async () => {
        io.stdout.write(`\n--- change detected, running the pins again ---\n`);
        try {
          code = await runPins(ctx, cmd, targets, { ...opts, update: false });
        } catch (e) {
          // A broken spec is what the author is fixing: say so and keep watching.
          io.stdout.write(`${e instanceof Error ? e.message : String(e)}\n`);
          code = EXIT.failed;
        }
      });
    }, 150);
  };
  for (const dir of new Set([...specsDirs(ctx, cmd), ...targets])) {
    try {
      watchers.push(watch(dir, { recursive: true }, rerun));
    } catch (e) {
      io.stderr.write(`warning: cannot watch ${displayPath(io, dir)}: ${(e as Error).message}\n`);
    }
  }
  io.stderr.write(`watching ${[...new Set([...specsDirs(ctx, cmd), ...targets])].map((d) => displayPath(io, d)).join(', ')} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearTimeout(timer);
  for (const w of watchers) w.close();
  await running;
  return code;
}
