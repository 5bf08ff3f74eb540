/**
 * `test [paths...]`: run the pins (expected requests per record and event) beside the specs.
 * `--watch` runs them again whenever a spec or a pin changes, until Ctrl-C.
 */
import { join } from 'node:path';
import { watch } from 'chokidar';
import { Option, type Command } from 'commander';
import { loadEngine, specsDirs, type Context } from '../context.js';
import { expandPathArgs } from '../globs.js';
import { displayPath, EXIT } from '../io.js';
import { pinFiles, runPin } from '../pins.js';
import { safe, safeLines } from '../text.js';

interface TestOptions {
  update?: boolean;
  watch?: boolean;
  reporter: 'text' | 'junit';
}

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

/** JUnit XML (what CI test reporters read): one testcase per pin, its problems as the failure text. */
function junit(results: { file: string; ok: boolean; problems: string[]; description?: string; ms: number }[]): string {
  const failures = results.filter((r) => !r.ok).length;
  const seconds = (ms: number) => (ms / 1000).toFixed(3);
  const total = results.reduce((n, r) => n + r.ms, 0);
  const cases = results.map((r) => {
    const parts = r.file.split('/');
    const classname = parts.length > 1 ? parts[parts.length - 2]! : 'pins';
    const open = `    <testcase classname="${xml(classname)}" name="${xml(r.file)}" time="${seconds(r.ms)}"`;
    if (r.ok) return `${open}/>`;
    const message = r.problems[0]?.split('\n')[0] ?? 'failed';
    return `${open}>\n      <failure message="${xml(message)}">${xml(r.problems.join('\n'))}</failure>\n    </testcase>`;
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="signal-integrations pins" tests="${results.length}" failures="${failures}" time="${seconds(total)}">\n  <testsuite name="pins" tests="${results.length}" failures="${failures}" errors="0" skipped="0" time="${seconds(total)}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}

export function registerTest(program: Command, ctx: Context): void {
  program
    .command('test')
    .description('check pinned previews (default: the tests/ folder of the specs directory); exit 1 when one differs')
    .argument('[paths...]', 'pin files or directories')
    .option('--update', 'write what each pin produces now as its expectation')
    .option('--watch', 'run again whenever a spec or a pin changes, until Ctrl-C')
    .addOption(new Option('--reporter <name>', 'text, or junit (JUnit XML on stdout, for CI)').choices(['text', 'junit']).default('text'))
    .action(async (paths: string[], opts: TestOptions, cmd: Command) => {
      const targets = paths.length ? (await expandPathArgs(ctx.io, paths)).map((p) => p.path) : specsDirs(ctx, cmd).map((d) => join(d, 'tests'));
      ctx.exitCode = opts.watch ? await watchPins(ctx, cmd, targets, opts) : await runPins(ctx, cmd, targets, opts);
    });
}

async function runPins(ctx: Context, cmd: Command, targets: string[], opts: TestOptions): Promise<number> {
  const { io } = ctx;
  const files = await pinFiles(targets);
  if (!files.length) {
    io.stderr.write(safe(`error: no pin files (*.yaml) found in ${targets.map((t) => displayPath(io, t)).join(', ')}`) + '\n');
    return EXIT.failed;
  }
  const engine = await loadEngine(ctx, cmd);
  const results: { file: string; ok: boolean; problems: string[]; ms: number }[] = [];
  const text = opts.reporter !== 'junit';
  try {
    for (const file of files) {
      const started = performance.now();
      const r = await runPin(engine, file, opts.update ? { update: true } : {});
      const shown = displayPath(io, file);
      results.push({ file: shown, ok: r.ok, problems: r.problems, ms: performance.now() - started });
      if (!text) continue;
      if (r.updated) io.stdout.write(safe(`updated  ${shown}`) + '\n');
      else if (r.ok) io.stdout.write(safe(`ok       ${shown}`) + '\n');
      else {
        io.stdout.write(safe(`FAIL     ${shown}${r.description ? ` — ${r.description}` : ''}`) + '\n');
        // A problem may span lines (expected / got): each line escaped, the breaks kept.
        for (const p of r.problems) io.stdout.write(safeLines(`         ${p}`) + '\n');
      }
    }
  } finally {
    engine.close();
  }
  const failed = results.filter((r) => !r.ok).length;
  if (text) io.stdout.write(`${files.length - failed} passed, ${failed} failed\n`);
  else io.stdout.write(junit(results));
  return failed ? EXIT.failed : EXIT.ok;
}

/** Run the pins, then again on every change under the specs and the pin targets; resolves on SIGINT/SIGTERM. */
async function watchPins(ctx: Context, cmd: Command, targets: string[], opts: TestOptions): Promise<number> {
  const { io } = ctx;
  let code: number = EXIT.ok;
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
  // chokidar, not fs.watch: an atomic save (write a temp file, rename it over the old one: vim, JetBrains,
  // sed -i) replaces the file's inode, and a plain watch on the old one never fires again.
  const watcher = watch([...new Set([...specsDirs(ctx, cmd), ...targets])], { ignoreInitial: true, atomic: true });
  watcher.on('all', rerun);
  watcher.on('error', (e) => io.stderr.write(safe(`warning: watching: ${(e as Error).message}`) + '\n'));
  // Watching starts before the first run, so a change saved while it runs is not missed.
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  code = await runPins(ctx, cmd, targets, opts);
  io.stderr.write(`watching ${[...new Set([...specsDirs(ctx, cmd), ...targets])].map((d) => displayPath(io, d)).join(', ')} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearTimeout(timer);
  await watcher.close();
  await running;
  return code;
}
