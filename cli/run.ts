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
// Only light modules at the top: `--version`, `--help` and every command start from here, and each
// command's own module (with the engine, ajv, jsonata, got) is imported only when that command runs.
import { formatDiagnostic, RecordError, SignalError, SpecError } from '../engine/errors.js';
import { packagePath } from '../engine/paths.js';
import type { Context } from './context.js';
import { CliError, displayPath, EXIT, resolvePath, type CliIO } from './io.js';
import { safe } from './text.js';

export type { CliIO } from './io.js';

export function version(): string {
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
    io.stderr.write(safe(`error: ${e.message}`) + '\n');
    return e.exitCode;
  }
  if (e instanceof SpecError) {
    io.stderr.write(`error: the integration specs are invalid (run 'signal-integrations validate' for details):\n`);
    for (const d of e.diagnostics) io.stderr.write(safe(`  ${formatDiagnostic({ ...d, file: displayPath(io, resolvePath(io, d.file)) })}`) + '\n');
    return EXIT.usage;
  }
  if (e instanceof RecordError || e instanceof SignalError) {
    // RecordError names fields and rules, never values; other SignalErrors here are configuration (e.g. the endpoint).
    io.stderr.write(safe(`error: ${e.message}`) + '\n');
    return EXIT.usage;
  }
  const name = e instanceof Error ? e.name : 'error';
  const message = e instanceof Error ? e.message : String(e);
  io.stderr.write(safe(`error: unexpected ${name}: ${message}`) + '\n');
  return EXIT.failed;
}

type Register = (program: Command, ctx: Context) => void;

/**
 * Every command: the one-line summary the root --help lists, and how to load its module. Add a command
 * with one line here; its module exports `register…(program, ctx)` as before.
 */
const COMMANDS: Record<string, { summary: string; load: () => Promise<Register> }> = {
  validate: { summary: 'check integration spec files; exit 1 when any is invalid', load: async () => (await import('./commands/validate.js')).registerValidate },
  preview: { summary: 'print the requests an event would produce (redacted); nothing is sent', load: async () => (await import('./commands/preview.js')).registerPreview },
  deliver: { summary: 'deliver NDJSON events through an integration; one outcome per line', load: async () => (await import('./commands/deliver.js')).registerDeliver },
  mock: { summary: 'run a local Marketing Cloud emulator until Ctrl-C', load: async () => (await import('./commands/mock.js')).registerMock },
  test: { summary: 'check pinned previews beside the specs; exit 1 when one differs', load: async () => (await import('./commands/test.js')).registerTest },
  playground: { summary: 'a local web page to try specs: record form, live preview, send to the emulator', load: async () => (await import('./commands/playground.js')).registerPlayground },
  eval: { summary: 'evaluate one JSONata expression against an event, as the engine does', load: async () => (await import('./commands/eval.js')).registerEval },
  init: { summary: 'write a new spec skeleton with an example record, event and pin', load: async () => (await import('./commands/init.js')).registerInit },
  demo: { summary: 'deliver the example events to a local emulator and show what it received', load: async () => (await import('./commands/demo.js')).registerDemo },
  enqueue: { summary: "put NDJSON events on an integration record's Redis queue", load: async () => (await import('./commands/enqueue.js')).registerEnqueue },
  worker: { summary: 'deliver events from Redis queues until SIGTERM (a fleet member)', load: async () => (await import('./commands/worker.js')).registerWorker },
  status: { summary: 'per integration: waiting, in flight, scheduled retries, delivered, failed, dead-lettered', load: async () => (await import('./commands/queue-admin.js')).registerStatus },
  'dead-letters': { summary: "print an integration's dead letters as NDJSON", load: async () => (await import('./commands/queue-admin.js')).registerDeadLetters },
  replay: { summary: "move an integration's dead letters back into its queue", load: async () => (await import('./commands/queue-admin.js')).registerReplay },
  trace: { summary: "every recorded attempt of one event (worker --trace): input, redacted requests, answers, outcome", load: async () => (await import('./commands/trace.js')).registerTrace },
  tap: { summary: 'follow outcomes live as every worker settles them, until Ctrl-C', load: async () => (await import('./commands/tap.js')).registerTap },
  records: { summary: 'put, list or remove integration records in the registry workers follow', load: async () => (await import('./commands/records.js')).registerRecords },
  completion: { summary: 'print a shell completion script (bash, zsh or fish)', load: async () => (await import('./commands/completion.js')).registerCompletion },
};

/** The command argv names (skipping global options and their values), or undefined for bare --help/--version. */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--specs') i++;
    else if (a === 'help') return argv[i + 1] ?? undefined;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

export async function buildProgram(ctx: Context, argv: readonly string[] = []): Promise<Command> {
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
  const wanted = commandName(argv);
  // Completion is made from the whole tree, so every command is registered for real.
  const all = wanted === 'completion';
  for (const [name, { summary, load }] of Object.entries(COMMANDS)) {
    if (all || name === wanted) {
      (await load())(program, ctx);
      program.commands.at(-1)?.summary(summary);
    } else {
      // A stub that only lists the command in the root --help: the real one is registered when named.
      program.command(name).summary(summary).description(summary).allowUnknownOption().allowExcessArguments();
    }
  }
  return program;
}

export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  const ctx: Context = { io, exitCode: EXIT.ok };
  try {
    await (await buildProgram(ctx, argv)).parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (e) {
    return report(io, e);
  }
}
