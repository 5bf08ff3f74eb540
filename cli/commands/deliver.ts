/**
 * `deliver`: stream NDJSON events through an integration. Every line read ends as exactly one outcome
 * (delivered, skipped or failed); failures can go to a dead-letter file that `--events` accepts back.
 * SIGINT/SIGTERM: stop reading, give in-flight deliveries a grace period, dead-letter the rest as
 * `interrupted`, exit 130. A dead-letter or checkpoint write error stops reading the same way, exit 2.
 * `--checkpoint FILE` records where the run stands, so the same command resumes after a kill -9.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { EventTrace } from '../../engine/run/trace.js';
import { open, writeFile, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Option, type Command } from 'commander';
import { DEFAULT_MAX_LINE_BYTES, type Engine, type Integration, type IntegrationRecord } from '../../engine/index.js';
import { Checkpoint } from '../checkpoint.js';
import { boundHeapGrowth } from '../heap.js';
import { loadEngine, type Context } from '../context.js';
import { DeadLetterFile } from '../dead-letters.js';
import { outcomeJson, outcomeLine, responseIdLabel, summaryText } from '../format.js';
import { CliError, describeFsError, displayPath, drained, EXIT, readJsonFile, resolvePath, type CliIO, type Output } from '../io.js';
import { convertHint, jsonDocumentMessage } from '../ndjson.js';
import { integerOption, secondsOption } from '../options.js';
import { runPipeline, type LineResult, type PipelineResult } from '../pipeline.js';
import { keyPrefixOption, openStore, redisOption } from '../store.js';
import { peekJsonDocument } from '../stdin.js';
import { safe } from '../text.js';
import { progress, summaryJson } from '../summary.js';

export const DEFAULT_CONCURRENCY = 16;
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 5;
/** The engine's default connection pool per host; `deliver` raises it to --concurrency when that is larger. */
export const DEFAULT_MAX_SOCKETS = 128;

interface DeliverOptions {
  integration: string;
  events: string;
  endpoint?: string;
  concurrency: number;
  json?: boolean;
  deadLetter?: string;
  maxLineBytes: number;
  shutdownTimeout: number;
  redis?: string;
  keyPrefix: string;
  checkpoint?: string;
  fromLine?: number;
  summaryJson?: string;
  trace?: string;
}

export function registerDeliver(program: Command, ctx: Context): void {
  program
    .command('deliver')
    .description('deliver NDJSON events (one per line) through an integration; one outcome per line')
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .requiredOption('--events <file>', "NDJSON events, or '-' for stdin (a dead-letter file is accepted too)")
    .option('--endpoint <url>', 'send every request to this base URL instead of the spec hosts (e.g. a local emulator)')
    .option('--concurrency <n>', 'requests in flight at once (above 128, the connection pool is raised to match)', integerOption(1, 1024), DEFAULT_CONCURRENCY)
    .option('--json', 'print one JSON outcome per line instead of text')
    .option('--dead-letter <file>', 'append every failed line to this NDJSON file (feed it back with --events to retry)')
    .option('--trace <file>', "write every delivery's trace (input, redacted requests, HTTP attempts, answers, outcome) to this NDJSON file")
    .option('--summary-json <file>', 'also write the run summary as JSON to this file (with --json it always ends stderr)')
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
    .addOption(redisOption({ required: false }))
    .addOption(keyPrefixOption())
    .option('--checkpoint <file>', 'record which lines have an outcome; when the file exists, resume from it (same events and integration)')
    .option('--from-line <n>', 'start at this line: the lines before it are read past, without an outcome', integerOption(1, Number.MAX_SAFE_INTEGER))
    .action(async (opts: DeliverOptions, cmd: Command) => {
      boundHeapGrowth(); // a long streaming run: keep the old generation near what is live (cli/heap.ts)
      ctx.exitCode = await deliver(ctx, cmd, opts);
    });
}

/** Files up to this size are read whole to tell one pretty-printed JSON document from NDJSON. */
const JSON_DOCUMENT_CHECK_BYTES = 16 * 1024 * 1024;

/**
 * A JSON document that is not NDJSON — pretty-printed over several lines, or an array of events — would
 * turn into one `invalid_event` per physical line: say so once instead. Only a file whose first line opens
 * a document it does not close (or is an array) and whose whole text parses is taken for one.
 */
async function jsonDocumentProblem(fh: FileHandle, size: number, shown: string): Promise<string | undefined> {
  const head = Buffer.alloc(Math.min(size, 64 * 1024));
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  const first = head.subarray(0, bytesRead).toString('utf8').split('\n', 1)[0]!.trim();
  if (!first.startsWith('{') && !first.startsWith('[')) return undefined;
  let firstLine: unknown;
  let firstParses = true;
  try {
    firstLine = JSON.parse(first);
  } catch {
    firstParses = false;
  }
  if (firstParses) return Array.isArray(firstLine) ? `events file '${shown}' starts with a JSON array, not one event per line (NDJSON): ${convertHint(Array.isArray(firstLine), shown)}` : undefined;
  if (size > JSON_DOCUMENT_CHECK_BYTES) return undefined;
  const whole = Buffer.alloc(size);
  const text = whole.subarray(0, (await fh.read(whole, 0, size, 0)).bytesRead).toString('utf8');
  return jsonDocumentMessage(text, `events file '${shown}'`, shown);
}

/** Open the events input: a file (checked now, streamed later) or stdin. */
export async function openEvents(io: CliIO, events: string): Promise<{ source: Readable; shown: string; abs?: string; ino?: [number, number] }> {
  if (events === '-') {
    if (!io.stdin) throw new CliError("--events -: no standard input available");
    const peeked = await peekJsonDocument(io.stdin);
    if (peeked.problem) throw new CliError(peeked.problem);
    return { source: peeked.source, shown: 'stdin' };
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
    const notNdjson = s.isFile() && s.size > 0 ? await jsonDocumentProblem(fh, s.size, shown) : undefined;
    if (notNdjson) {
      await fh.close();
      throw new CliError(notNdjson);
    }
    return { source: fh.createReadStream({ highWaterMark: 64 * 1024, start: 0 }), shown, abs, ino: [s.dev, s.ino] };
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`cannot read events file '${shown}': ${describeFsError(e)}`);
  }
}

/** Resolves once everything written to `out` so far is in the kernel's hands (at once for a test collector). */
function flushed(out: Output): Promise<void> {
  const w = out as Output & { writableLength?: number; write(chunk: string, cb: () => void): boolean };
  if (typeof w.writableLength !== 'number') return Promise.resolve();
  return new Promise((resolve) => w.write('', () => resolve()));
}

/** At most `n` line numbers, then how many more. */
function lineList(lines: readonly number[], n = 20): string {
  const sorted = [...lines].sort((a, b) => a - b);
  return sorted.slice(0, n).join(', ') + (sorted.length > n ? `, … (${sorted.length - n} more)` : '');
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
    deadLetter?: DeadLetterFile;
    checkpoint?: Checkpoint;
    /** Lines before this one are read past (--from-line without a checkpoint). */
    fromLine?: number;
    endpoint?: string;
    /** Whether to say in the summary that the endpoint was an operator option (not for the demo's own emulator). */
    endpointIsOverride?: boolean;
    stop?: AbortSignal;
    hurry?: AbortSignal;
    graceMs: number;
    /** Sees every line's result after it is printed (the demo checks which failures it expected). */
    observe?: (r: LineResult) => void;
    /** Write the summary as JSON here too (`--summary-json`). */
    summaryJsonFile?: string;
    /** Each delivery's trace, one JSON line per event (`--trace`). */
    trace?: (line: number, trace: EventTrace) => void;
  },
): Promise<DeliveryRun> {
  const idLabel = responseIdLabel(p.integration);
  const dl = p.deadLetter;
  const cp = p.checkpoint;
  // A dead-letter or checkpoint write error stops the run as a signal would: reading stops, in-flight
  // deliveries get the grace period, and every line read still gets its outcome.
  const halt = new AbortController();
  const stop = p.stop ? AbortSignal.any([p.stop, halt.signal]) : halt.signal;
  let checkpointError: string | undefined;
  const window = p.integration.inFlightWindow(p.concurrency);

  // Checkpoint: outcomes printed since the last save; saved once stdout has them (group commit).
  const pendingDone: number[] = [];
  let committing: Promise<void> | undefined;
  const commit = (): Promise<void> => {
    if (!cp) return Promise.resolve();
    // After the current turn (so one save covers every outcome it printed) and once stdout has them.
    committing ??= new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => flushed(io.stdout))
      .then(() => {
      for (const line of pendingDone.splice(0)) cp.markDone(line);
      const err = cp.save();
      if (err !== undefined && checkpointError === undefined) {
        checkpointError = err;
        halt.abort('a checkpoint write error');
      }
      committing = undefined;
      if (pendingDone.length) void commit();
    });
    return committing;
  };

  const reserve = (line: number): void => {
    const err = cp?.reserve(line, window);
    if (err !== undefined && checkpointError === undefined) {
      checkpointError = err;
      halt.abort('a checkpoint write error');
    }
  };
  const shown = progress(io.stderr, io.stdout);
  const emit = (r: LineResult): void => {
    shown.count(r.outcome.status);
    // A line decided without a send (blank, not an event) is printed now: the checkpoint must already
    // say this line may have an outcome, or a kill before the next save would print it twice unflagged.
    reserve(r.outcome.line);
    // The dead letter first (a synchronous append), then the outcome: a failure shown is never one whose
    // dead letter a crash could lose.
    let kept = true;
    if (r.outcome.status === 'failed' && dl) {
      kept = dl.write(r);
      if (!kept && !halt.signal.aborted) halt.abort('a dead-letter write error');
    }
    io.stdout.write((p.json ? outcomeJson(r.outcome) : outcomeLine(r.outcome, idLabel)) + '\n');
    if (cp && kept) {
      pendingDone.push(r.outcome.line);
      void commit();
    }
    p.observe?.(r);
  };
  const fromLine = p.fromLine;
  const started = Date.now();
  const result = await runPipeline({
    integration: p.integration,
    source: p.source,
    concurrency: p.concurrency,
    maxLineBytes: p.maxLineBytes,
    emit,
    stop,
    ...(p.hurry ? { hurry: p.hurry } : {}),
    graceMs: p.graceMs,
    ...(p.trace ? { trace: p.trace } : {}),
    ...(cp
      ? {
          pass: (line: number) => cp.passes(line),
          maybeSentBefore: (line: number) => cp.maybeSent(line),
          beforeStart: reserve,
        }
      : fromLine !== undefined
        ? { pass: (line: number) => line < fromLine }
        : {}),
    writable: () => {
      const waits: Promise<unknown>[] = [];
      if (io.stdout.writableNeedDrain) waits.push(drained(io.stdout));
      // Bound what a kill -9 can leave without a recorded outcome: wait for the checkpoint to catch up.
      if (cp && pendingDone.length >= window) waits.push(commit());
      return waits.length ? Promise.all(waits).then(() => undefined) : undefined;
    },
  });
  const elapsedMs = Date.now() - started;
  shown.stop();
  if (cp) {
    while (pendingDone.length || committing) await commit();
    cp.settle(result.lastLine);
    if (!result.interrupted && result.readError === undefined && checkpointError === undefined && dl?.error === undefined) cp.finish(result.lastLine);
    const err = cp.save();
    if (err !== undefined) checkpointError ??= err;
  }
  dl?.close();

  const notes: string[] = [];
  const errors: string[] = [];
  const some = (n: number): string => `${n} ${n === 1 ? 'line' : 'lines'}`;
  if (fromLine !== undefined) {
    if (result.passed) notes.push(`--from-line ${fromLine}: ${some(result.passed)} before it read past, without an outcome`);
    if (result.lastLine < fromLine - 1 && !result.interrupted && result.readError === undefined) notes.push(`note: the input ended at line ${result.lastLine}, before line ${fromLine}: nothing was delivered`);
  } else if (result.passed) notes.push(`resumed: ${some(result.passed)} passed over (an earlier run gave them their outcome)`);
  if (dl?.error !== undefined) {
    errors.push(
      `error: writing dead letters to ${dl.shown} failed: ${dl.error}; reading stopped. ${dl.missing.length} failed ` +
        `${dl.missing.length === 1 ? 'line has' : 'lines have'} no dead letter (their outcomes are on stdout): line ${lineList(dl.missing)}`,
    );
  }
  if (checkpointError !== undefined && cp) errors.push(`error: writing checkpoint ${cp.shown} failed: ${checkpointError}; reading stopped`);
  if (cp) {
    if (checkpointError === undefined && cp.through >= result.lastLine && cp.above === 0 && !result.interrupted && dl?.error === undefined && result.readError === undefined) {
      notes.push(`checkpoint ${cp.shown}: complete, every line through ${cp.through} has an outcome (the same command again reads only lines added after it)`);
    } else {
      notes.push(
        `checkpoint ${cp.shown}: every line through ${cp.through} has an outcome${cp.above ? `, and ${cp.above} above it` : ''}; ` +
          `run the same command again to resume from line ${cp.through + 1}`,
      );
    }
  } else if (dl?.error !== undefined) {
    notes.push(`to resume once dead letters can be written: the same command with --from-line ${result.lastLine + 1}; send the lines listed above again from the input`);
  } else if (result.interrupted) {
    notes.push(`to resume: the same command with --from-line ${result.lastLine + 1}${dl ? `; feed ${dl.shown} back with --events for the failed lines` : ''}`);
  }
  const readError = result.readError === undefined ? undefined : describeFsError(result.readError);
  io.stderr.write(
    summaryText({
      result,
      deadLettered: dl?.written ?? 0,
      elapsedMs,
      ...(p.endpoint && p.endpointIsOverride !== false ? { endpoint: p.endpoint } : {}),
      ...(dl ? { deadLetterFile: dl.shown } : {}),
      ...(readError ? { readError } : {}),
      ...(p.endpointIsOverride === false ? { suggestDeadLetter: false } : {}),
      errors,
      notes,
    }),
  );
  const exitCode =
    dl?.error !== undefined || checkpointError !== undefined
      ? EXIT.usage
      : result.interrupted
        ? EXIT.interrupted
        : result.failed || readError
          ? EXIT.failed
          : EXIT.ok;
  if (p.json || p.summaryJsonFile) {
    const line = summaryJson({
      result,
      deadLettered: dl?.written ?? 0,
      elapsedMs,
      exitCode,
      ...(p.endpoint && p.endpointIsOverride !== false ? { endpoint: p.endpoint } : {}),
      ...(dl ? { deadLetterFile: dl.shown } : {}),
      ...(dl?.error !== undefined ? { deadLetterError: dl.error } : {}),
      ...(readError ? { readError } : {}),
    });
    if (p.json) io.stderr.write(line + '\n');
    if (p.summaryJsonFile) {
      try {
        await writeFile(resolvePath(io, p.summaryJsonFile), line + '\n');
      } catch (e) {
        io.stderr.write(safe(`error: cannot write --summary-json '${p.summaryJsonFile}': ${describeFsError(e)}`) + '\n');
        return { result, deadLettered: dl?.written ?? 0, exitCode: exitCode === EXIT.ok ? EXIT.failed : exitCode };
      }
    }
  }
  return { result, deadLettered: dl?.written ?? 0, exitCode };
}

async function deliver(ctx: Context, cmd: Command, opts: DeliverOptions): Promise<number> {
  const { io } = ctx;
  const record = await readJsonFile(io, opts.integration, 'integration record');
  // The engine's pool holds 128 connections per host; a larger --concurrency would wait for a free
  // connection inside the request timeout. Size the pool to what the operator asked for, and say so.
  const maxSockets = Math.max(DEFAULT_MAX_SOCKETS, opts.concurrency);
  const store = await openStore(opts.redis, opts.keyPrefix);
  let engine: Engine;
  try {
    engine = await loadEngine(ctx, cmd, { ...(store ? { store } : {}), ...(maxSockets > DEFAULT_MAX_SOCKETS ? { maxSockets } : {}) });
  } catch (e) {
    await store?.close();
    throw e;
  }
  let source: Readable | undefined;
  let deadLetter: DeadLetterFile | undefined;
  let traceFile: WriteStream | undefined;
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
    const integration = engine.createIntegration(record as IntegrationRecord, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {});
    const input = await openEvents(io, opts.events);
    source = input.source;
    if (opts.deadLetter !== undefined) deadLetter = DeadLetterFile.open(io, opts.deadLetter, input.ino);
    if (opts.trace !== undefined) {
      traceFile = createWriteStream(resolvePath(io, opts.trace));
      traceFile.on('error', (e) => io.stderr.write(safe(`error: writing traces to ${opts.trace}: ${e.message}`) + '\n'));
    }
    const checkpoint =
      opts.checkpoint !== undefined
        ? Checkpoint.open(io, opts.checkpoint, { events: input.abs ?? 'stdin', integration: integration.name }, opts.fromLine, [
            ...(input.abs ? [{ path: input.abs, option: 'events' }] : []),
            ...(opts.deadLetter !== undefined ? [{ path: resolvePath(io, opts.deadLetter), option: 'dead-letter' }] : []),
          ])
        : undefined;
    io.stderr.write(
      safe(
        `delivering ${input.shown} through '${integration.name}' (${integration.vendor}), concurrency ${opts.concurrency}` +
          `${opts.endpoint ? `, endpoint override ${opts.endpoint}` : ''}${store ? ', tokens and rate limits shared through Redis' : ''}`,
      ) + '\n',
    );
    if (opts.concurrency > DEFAULT_MAX_SOCKETS) {
      io.stderr.write(`note: --concurrency ${opts.concurrency} is above the default pool of ${DEFAULT_MAX_SOCKETS} connections per host: the pool is raised to ${opts.concurrency}\n`);
    }
    const resume = checkpoint?.resume;
    if (opts.fromLine !== undefined) {
      io.stderr.write(`starting at line ${opts.fromLine} (--from-line): lines before it are read past without an outcome${checkpoint ? ` (overrides what checkpoint ${checkpoint.shown} said)` : ''}\n`);
    } else if (resume && checkpoint && resume.from === 1 && !resume.doneAbove && !resume.window) {
      io.stderr.write(safe(`resuming from checkpoint ${checkpoint.shown}: no line has an outcome yet, starting at line 1`) + '\n');
    } else if (resume && checkpoint) {
      io.stderr.write(
        safe(
          `resuming from checkpoint ${checkpoint.shown}: lines through ${resume.from - 1}${resume.doneAbove ? ` and ${resume.doneAbove} above` : ''} already have an outcome and are read past` +
            (resume.window
              ? `; lines ${resume.window[0]}–${resume.window[1] - 1} without one may have been sent by the stopped run: sent again, flagged possibly_duplicated`
              : ''),
        ) + '\n',
      );
    }
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
      ...(checkpoint ? { checkpoint } : {}),
      ...(opts.fromLine !== undefined ? { fromLine: opts.fromLine } : {}),
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      stop: stop.signal,
      hurry: hurry.signal,
      graceMs,
      ...(opts.summaryJson !== undefined ? { summaryJsonFile: opts.summaryJson } : {}),
      ...(traceFile ? { trace: (line: number, t: EventTrace) => void traceFile!.write(JSON.stringify({ line, integration: integration.name, ...(integration.id !== undefined ? { integration_id: integration.id } : {}), vendor: integration.vendor, trace: t }) + '\n') } : {}),
    });
    return run.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    engine.close();
    await store?.close();
    if (source && source !== io.stdin && !source.destroyed) source.destroy();
    deadLetter?.close();
    if (traceFile) await new Promise<void>((r) => traceFile!.end(() => r()));
  }
}
