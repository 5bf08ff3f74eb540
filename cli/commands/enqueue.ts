/**
 * `enqueue`: put NDJSON events on an integration record's queue (one queue per record id; each message
 * carries the record's id and credential-scope fingerprint, so only that record delivers it). Lines that are not
 * events are refused here, with the same per-line reasons as `deliver`; blank lines are skipped. A
 * dead-letter file (from `deliver` or `dead-letters`) is accepted: its events go on the queue again.
 */
import { Option, type Command } from 'commander';
import { DEFAULT_MAX_LINE_BYTES, isBlankLine, parseEventLine, REASONS } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { checkRedisUrl, connectQueue, redisFailure, queueRecord } from '../fleet.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { EXIT } from '../io.js';
import { readLines } from '../ndjson.js';
import { integerOption } from '../options.js';
import { openEvents } from './deliver.js';
import { otelWanted, startOtel } from '../otel.js';

interface EnqueueOptions {
  redis: string;
  keyPrefix: string;
  integration: string;
  events: string;
  maxLineBytes: number;
  json?: boolean;
  otel?: boolean;
}

const CHUNK = 500;

export function registerEnqueue(program: Command, ctx: Context): void {
  program
    .command('enqueue')
    .description("put NDJSON events on an integration record's queue for `worker`; bad lines are refused with deliver's reasons")
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .requiredOption('--integration <file>', "integration record (JSON) with an id: its queue is keyed by the record's id")
    .requiredOption('--events <file>', "NDJSON events, or '-' for stdin (a dead-letter file is accepted too)")
    .addOption(
      new Option('--max-line-bytes <n>', 'longest accepted input line; longer lines are refused as invalid_event')
        .argParser(integerOption(1, 256 * 1024 * 1024))
        .default(DEFAULT_MAX_LINE_BYTES, '1048576 = 1 MiB'),
    )
    .option('--json', 'print {"integration" (the id), "name", "enqueued", "refused", "blank"} and one JSON line per refused line')
    .option('--otel', 'export an OpenTelemetry span per 500 events over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT...); the events carry its trace context to the worker (docs/opentelemetry.md)')
    .action(async (opts: EnqueueOptions, cmd: Command) => {
      ctx.exitCode = await enqueue(ctx, cmd, opts);
    });
}

async function enqueue(ctx: Context, cmd: Command, opts: EnqueueOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  // The record must be deliverable before its events are accepted: a typo should not fill a queue.
  const engine = await loadEngine(ctx, cmd);
  let record;
  try {
    record = await queueRecord(io, opts.integration, engine);
  } finally {
    engine.close();
  }
  // Connected first: `--events -` waits for its first line (a JSON document is peeked), Redis need not.
  const otel = otelWanted(opts.otel) ? await startOtel('signal-integrations-enqueue', { warn: (_o, msg) => void io.stderr.write(`${msg}\n`) }) : undefined;
  let queue;
  let input;
  try {
    queue = await connectQueue(opts.redis, { prefix: opts.keyPrefix });
    input = await openEvents(io, opts.events);
  } catch (e) {
    await queue?.close();
    await otel?.shutdown();
    throw e;
  }
  let line = 0;
  let enqueued = 0;
  let refused = 0;
  let blank = 0;
  let chunk: unknown[] = [];
  const refuse = (n: number, message: string, event_id?: string): void => {
    refused++;
    const text = `line ${n}: ${message}`;
    if (!opts.json) io.stderr.write(`line ${n}  ${event_id ?? '-'}  refused  ${REASONS.invalidEvent} — ${text}\n`);
    else io.stdout.write(JSON.stringify({ line: n, event_id: event_id ?? null, status: 'failed', reason: REASONS.invalidEvent, message: text, retryable: false }) + '\n');
  };
  try {
    for await (const raw of readLines(input.source, opts.maxLineBytes)) {
      const n = ++line;
      if (raw.bytes === undefined) {
        refuse(n, `line is ${raw.oversized} bytes, over the limit of ${opts.maxLineBytes} bytes (--max-line-bytes); its content was not kept`);
        continue;
      }
      if (isBlankLine(raw.bytes)) {
        blank++;
        continue;
      }
      const parsed = parseEventLine(raw.bytes, { maxBytes: opts.maxLineBytes, unwrapDeadLetter: true });
      if (!parsed.ok) {
        refuse(n, parsed.message, parsed.event_id);
        continue;
      }
      chunk.push(parsed.event);
      if (chunk.length >= CHUNK) {
        enqueued += await queue.enqueue(record, chunk);
        chunk = [];
      }
    }
    if (chunk.length) enqueued += await queue.enqueue(record, chunk);
  } catch (e) {
    throw redisFailure(e, opts.redis) ?? e;
  } finally {
    await queue.close();
    await otel?.shutdown();
    if (input.source !== io.stdin && !input.source.destroyed) input.source.destroy();
  }
  if (opts.json) io.stdout.write(JSON.stringify({ integration: record.id, name: record.name, enqueued, refused, blank }) + '\n');
  else io.stdout.write(`enqueued ${enqueued} ${enqueued === 1 ? 'event' : 'events'} for ${record.id} ('${record.name}')${refused ? `; ${refused} ${refused === 1 ? 'line' : 'lines'} refused (see above)` : ''}${blank ? `; ${blank} blank skipped` : ''}\n`);
  return refused ? EXIT.failed : EXIT.ok;
}
