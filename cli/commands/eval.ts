/**
 * `eval <expression> --event FILE|-`: try one JSONata expression against an event, compiled and
 * evaluated exactly as the engine does (the same fast path for plain property paths, the same JSONata
 * guardrails otherwise). The event is the input; `$event` is bound too, and `$config` when a record is
 * given, so an expression copied from a spec body answers here what it answers there.
 */
import type { Command } from 'commander';
import { compileExpression, ExpressionEvalError, ExpressionSyntaxError } from '../../engine/compile/expression.js';
import { parseJsonSafely } from '../../engine/index.js';
import type { Context } from '../context.js';
import { CliError, EXIT, readJsonFile, readSmallFile } from '../io.js';
import { readStdin } from '../stdin.js';

interface EvalOptions {
  event?: string;
  integration?: string;
}

export function registerEval(program: Command, ctx: Context): void {
  program
    .command('eval')
    .description('evaluate one JSONata expression against an event, as the engine does; prints the result as JSON')
    .argument('<expression>', "a JSONata expression, e.g. 'properties.email'")
    .option('--event <file>', "Signal event (JSON; '-': standard input); default: no input")
    .option('--integration <file>', 'integration record (JSON): binds $config to its config')
    .action(async (expression: string, opts: EvalOptions) => {
      ctx.exitCode = await evaluate(ctx, expression, opts);
    });
}

async function evaluate(ctx: Context, source: string, opts: EvalOptions): Promise<number> {
  const { io } = ctx;
  let expr;
  try {
    expr = compileExpression(source);
  } catch (e) {
    if (!(e instanceof ExpressionSyntaxError)) throw e;
    const at = /end of expression/.test(e.message) ? source.length : e.position;
    io.stderr.write(`error: ${e.message}\n  ${source}\n  ${' '.repeat(at)}^\n`);
    return EXIT.usage;
  }
  let event: unknown;
  if (opts.event === '-') {
    const r = parseJsonSafely((await readStdin(io, 'the event')).toString('utf8'));
    if (!r.ok) throw new CliError(`the event on standard input is not usable: ${r.message}`);
    event = r.value;
  } else if (opts.event !== undefined) {
    const r = parseJsonSafely(Buffer.from(await readSmallFile(io, opts.event, 'event file')).toString('utf8'));
    if (!r.ok) throw new CliError(`event file '${opts.event}' is not usable: ${r.message}`);
    event = r.value;
  }
  const record = opts.integration !== undefined ? ((await readJsonFile(io, opts.integration, 'integration record')) as { config?: unknown }) : undefined;
  const bindings: Record<string, unknown> = { event };
  if (record) bindings.config = record.config ?? {};
  let value: unknown;
  try {
    value = await expr.evaluate(event, bindings);
  } catch (e) {
    if (!(e instanceof ExpressionEvalError)) throw e;
    io.stderr.write(`error: the expression failed: ${e.message}\n`);
    return EXIT.failed;
  }
  if (value === undefined) {
    // What a spec body does with it: the key is left out.
    io.stderr.write('(no value: the expression matched nothing; in a body the key would be left out)\n');
    return EXIT.ok;
  }
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
  return EXIT.ok;
}
