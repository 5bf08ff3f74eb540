/**
 * The CLI as a function: `run(argv, io)` parses the arguments, runs one command against the given
 * streams and resolves with the exit code — it never calls process.exit, so tests run it in-process.
 *
 * Exit codes: 0 ok · 1 something failed (invalid spec in `validate`, failed/dead-lettered events) ·
 * 2 usage or configuration error (bad flag, unreadable/invalid record or spec, bad endpoint) ·
 * 130 interrupted (SIGINT/SIGTERM during `deliver`).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { formatDiagnostic, RecordError, SignalError, SpecError } from '../engine/index.js';
import { packagePath } from '../engine/paths.js';
import { registerDeliver } from './commands/deliver.js';
import { registerDemo } from './commands/demo.js';
import { registerEnqueue } from './commands/enqueue.js';
import { registerMock } from './commands/mock.js';
import { registerPreview } from './commands/preview.js';
import { registerQueueAdmin } from './commands/queue-admin.js';
import { registerTest } from './commands/test.js';
import { registerValidate } from './commands/validate.js';
import { registerWorker } from './commands/worker.js';
import type { Context } from './context.js';
import { CliError, displayPath, EXIT, resolvePath, type CliIO } from './io.js';

export type { CliIO } from './io.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** One clear message on stderr, never a stack trace; the exit code for the kind of error. */
function report(io: CliIO, e: unknown): number {
  if (e instanceof CommanderError) {
    // Commander already wrote the message (or the help) through configureOutput.
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (e instanceof CliError) {
    io.stderr.write(`error: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof SpecError) {
    io.stderr.write(`error: the integration specs are invalid (run 'signal-integrations validate' for details):\n`);
    for (const d of e.diagnostics) io.stderr.write(`  ${formatDiagnostic({ ...d, file: displayPath(io, resolvePath(io, d.file)) })}\n`);
    return EXIT.usage;
  }
  if (e instanceof RecordError || e instanceof SignalError) {
    // RecordError names fields and rules, never values; other SignalErrors here are configuration (e.g. the endpoint).
    io.stderr.write(`error: ${e.message}\n`);
    return EXIT.usage;
  }
  const name = e instanceof Error ? e.name : 'error';
  const message = e instanceof Error ? e.message : String(e);
  io.stderr.write(`error: unexpected ${name}: ${message}\n`);
  return EXIT.failed;
}

export function buildProgram(ctx: Context): Command {
  const { io } = ctx;
  const program = new Command('signal-integrations');
  program
    .description('Validate integration specs, preview and deliver Datafly Signal events, run a local vendor emulator.')
    .version(version(), '-V, --version')
    .option('--specs <dir>', 'integration specs to use instead of the bundled specs/')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => void io.stdout.write(s),
      writeErr: (s) => void io.stderr.write(s),
      outputError: (s, write) => write(s),
    })
    .showHelpAfterError('(run with --help for usage)');
  registerValidate(program, ctx);
  registerPreview(program, ctx);
  registerDeliver(program, ctx);
  registerMock(program, ctx);
  registerTest(program, ctx);
  registerDemo(program, ctx);
  registerEnqueue(program, ctx);
  registerWorker(program, ctx);
  registerQueueAdmin(program, ctx);
  return program;
}

export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const ctx: Context = { io, exitCode: EXIT.ok };
  try {
    await buildProgram(ctx).parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    return report(io, e);
  }
}
