/**
 * `deliver`: stream NDJSON events through an integration. Every line read ends as exactly one outcome
 * (delivered, skipped or failed); failures can go to a dead-letter file that `--events` accepts back.
 * SIGINT/SIGTERM: stop reading, give in-flight deliveries a grace period, dead-letter the rest as
 * `interrupted`, exit 130.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Option, type Command } from 'commander';
import { DEFAULT_MAX_LINE_BYTES, type Engine, type Integration } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { deadLetterJson, outcomeJson, outcomeLine, responseIdLabel, summaryText } from '../format.js';
import { CliError, describeFsError, displayPath, drained, EXIT, readJsonFile, resolvePath, type CliIO } from '../io.js';
import { integerOption, secondsOption } from '../options.js';
import { runPipeline, type LineResult, type PipelineResult } from '../pipeline.js';

export const DEFAULT_CONCURRENCY = 16;
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 5;

interface DeliverOptions {
  integration: string;
  events: string;
  endpoint?: string;
  concurrency: number;
  json?: boolean;
  deadLetter?: string;
  maxLineBytes: number;
  shutdownTimeout: number;
}

export function registerDeliver(program: Command, ctx: Context): void {
  program
    .command('deliver')
    .description('deliver NDJSON events (one per line) through an integration; one outcome per line')
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .requiredOption('--events <file>', "NDJSON events, or '-' for stdin (a dead-letter file is accepted too)")
    .option('--endpoint <url>', 'send every request to this base URL instead of the spec hosts (e.g. a local emulator)')
    .option('--concurrency <n>', 'deliveries in flight at once', integerOption(1, 1024), DEFAULT_CONCURRENCY)
    .option('--json', 'print one JSON outcome per line instead of text')
    .option('--dead-letter <file>', 'append every failed line to this NDJSON file (feed it back with --events to retry)')
    .addOption(
      new Option('--max-line-bytes <n>', 'longest accepted input line; longer lines fail as invalid_event')
        .argParser(integerOption(1, 256 * 1024 * 1024))
        .default(DEFAULT_MAX_LINE_BYTES, '1048576 = 1 MiB'),
    )
    .option(
      '--shutdown-timeout <seconds>',
      'on SIGINT/SIGTERM, how long in-flight deliveries may finish before they are aborted',
      secondsOption(0, 600),
      DEFAULT_SHUTDOWN_TIMEOUT_S,
    )
    .action(async (opts: DeliverOptions, cmd: Command) => {
      ctx.exitCode = await deliver(ctx, cmd, opts);
    });
}

/** Open the events input: a file (checked now, streamed later) or stdin. */
export async function openEvents(io: CliIO, events: string): Promise<{ source: Readable; shown: string; ino?: [number, number] }> {
  if (events === '-') {
    if (!io.stdin) throw new CliError("--events -: no standard input available");
    return { source: io.stdin, shown: 'stdin' };
  }
  const abs = resolvePath(io, events);
  const shown = displayPath(io, abs);
  try {
    const fh = await open(abs, 'r');
    const s = await fh.stat();
    if (s.isDirectory()) {
      await fh.close();
      throw Object.assign(new Error('directory'), { code: 'EISDIR' });
    }
    return { source: fh.createReadStream({ highWaterMark: 64 * 1024 }), shown, ino: [s.dev, s.ino] };
  } catch (e) {
    throw new CliError(`cannot read events file '${shown}': ${describeFsError(e)}`);
  }
}

/** Open the dead-letter file for appending, now: an unwritable path is a configuration error, not a late surprise. */
async function openDeadLetter(io: CliIO, file: string, input?: [number, number]): Promise<{ stream: WriteStream; shown: string }> {
  const abs = resolvePath(io, file);
  const shown = displayPath(io, abs);
  if (input) {
    const s = await stat(abs).catch(() => undefined);
    if (s && s.dev === input[0] && s.ino === input[1]) throw new CliError(`--dead-letter '${shown}' is the events file: dead letters must go to another file`);
  }
  const stream = createWriteStream(abs, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (e) => reject(new CliError(`cannot write dead-letter file '${shown}': ${describeFsError(e)}`)));
  });
  return { stream, shown };
}

export interface DeliveryRun {
  result: PipelineResult;
  deadLettered: number;
  exitCode: number;
}

/** Stream events through an integration, print outcomes, write dead letters and the summary. Shared with `demo`. */
export async function deliverStream(
  io: CliIO,
  p: {
    engine: Engine;
    integration: Integration;
    source: Readable;
    json?: boolean;
    concurrency: number;
    maxLineBytes: number;
    deadLetter?: { stream: WriteStream; shown: string };
    endpoint?: string;
    /** Whether to say in the summary that the endpoint was an operator option (not for the demo's own emulator). */
    endpointIsOverride?: boolean;
    stop?: AbortSignal;
    hurry?: AbortSignal;
    graceMs: number;
    /** Sees every line's result after it is printed (the demo checks which failures it expected). */
    observe?: (r: LineResult) => void;
  },
): Promise<DeliveryRun> {
  const idLabel = responseIdLabel(p.integration);
  let deadLettered = 0;
  let deadLetterError: string | undefined;
  p.deadLetter?.stream.on('error', (e) => {
    deadLetterError ??= describeFsError(e);
  });
  const emit = (r: LineResult): void => {
    io.stdout.write((p.json ? outcomeJson(r.outcome) : outcomeLine(r.outcome, idLabel)) + '\n');
    if (r.outcome.status === 'failed' && p.deadLetter && deadLetterError === undefined) {
      p.deadLetter.stream.write(deadLetterJson(r, new Date()) + '\n');
      deadLettered++;
    }
    p.observe?.(r);
  };
  const started = Date.now();
  const result = await runPipeline({
    integration: p.integration,
    source: p.source,
    concurrency: p.concurrency,
    maxLineBytes: p.maxLineBytes,
    emit,
    ...(p.stop ? { stop: p.stop } : {}),
    ...(p.hurry ? { hurry: p.hurry } : {}),
    graceMs: p.graceMs,
    writable: () => {
      const waits = [drained(io.stdout)];
      if (p.deadLetter?.stream.writableNeedDrain) waits.push(new Promise((r) => p.deadLetter!.stream.once('drain', r)));
      return io.stdout.writableNeedDrain || p.deadLetter?.stream.writableNeedDrain ? Promise.all(waits).then(() => undefined) : undefined;
    },
  });
  const elapsedMs = Date.now() - started;
  if (p.deadLetter) {
    const s = p.deadLetter.stream;
    await new Promise<void>((resolve) => {
      if (s.destroyed) return resolve();
      s.end(() => resolve());
      s.once('error', () => resolve());
    });
  }
  const readError = result.readError === undefined ? undefined : describeFsError(result.readError);
  io.stderr.write(
    summaryText({
      result,
      deadLettered,
      elapsedMs,
      ...(p.endpoint && p.endpointIsOverride !== false ? { endpoint: p.endpoint } : {}),
      ...(p.deadLetter ? { deadLetterFile: p.deadLetter.shown } : {}),
      ...(deadLetterError ? { deadLetterError } : {}),
      ...(readError ? { readError } : {}),
      ...(p.endpointIsOverride === false ? { suggestDeadLetter: false } : {}),
    }),
  );
  const exitCode = result.interrupted ? EXIT.interrupted : result.failed || readError || deadLetterError ? EXIT.failed : EXIT.ok;
  return { result, deadLettered, exitCode };
}

async function deliver(ctx: Context, cmd: Command, opts: DeliverOptions): Promise<number> {
  const { io } = ctx;
  const record = await readJsonFile(io, opts.integration, 'integration record');
  const engine = await loadEngine(ctx, cmd);
  let source: Readable | undefined;
  let deadLetter: { stream: WriteStream; shown: string } | undefined;
  const stop = new AbortController();
  const hurry = new AbortController();
  const graceMs = Math.round(opts.shutdownTimeout * 1000);
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!stop.signal.aborted) {
      io.stderr.write(`${sig}: stopping — no more input is read; in-flight deliveries get ${opts.shutdownTimeout} s to finish (send it again to abort them now)\n`);
      stop.abort(sig);
    } else hurry.abort(sig);
  };
  try {
    const integration = engine.createIntegration(record, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {});
    const input = await openEvents(io, opts.events);
    source = input.source;
    if (opts.deadLetter !== undefined) deadLetter = await openDeadLetter(io, opts.deadLetter, input.ino);
    io.stderr.write(
      `delivering ${input.shown} through '${integration.name}' (${integration.vendor}), concurrency ${opts.concurrency}` +
        `${opts.endpoint ? `, endpoint override ${opts.endpoint}` : ''}\n`,
    );
    // Only this command reacts to signals, and only while it runs.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const run = await deliverStream(io, {
      engine,
      integration,
      source,
      ...(opts.json ? { json: true } : {}),
      concurrency: opts.concurrency,
      maxLineBytes: opts.maxLineBytes,
      ...(deadLetter ? { deadLetter } : {}),
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      stop: stop.signal,
      hurry: hurry.signal,
      graceMs,
    });
    return run.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    engine.close();
    if (source && source !== io.stdin && !source.destroyed) source.destroy();
    if (deadLetter && !deadLetter.stream.closed) deadLetter.stream.destroy();
  }
}
