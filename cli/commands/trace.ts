/**
 * `trace --event-id ID`: every queue attempt of one event that `worker --trace` recorded, across workers
 * and retries, oldest first — the input, each request as sent (redacted), each HTTP attempt with its
 * status, the vendor's answer and what was decided, then the outcome with its hint. Text for a person,
 * `--json` (one JSON document per attempt, NDJSON) for tools. Exit 0 found, 1 none found, 2 usage or Redis
 * unreachable.
 */
import type { Command } from 'commander';
import { createTraceStore, SignalError, type StoredTrace } from '../../engine/index.js';
import { checkIntegrationId } from '../../engine/fleet/redis-queue.js';
import type { Context } from '../context.js';
import { checkRedisUrl } from '../fleet.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { CliError, EXIT } from '../io.js';
import { safe } from '../text.js';
import { eventTraceText, indent } from '../trace-text.js';

interface TraceOptions {
  redis: string;
  keyPrefix: string;
  eventId: string;
  integration?: string;
  json?: boolean;
}

export function registerTrace(program: Command, ctx: Context): void {
  program
    .command('trace')
    .description('every recorded attempt of one event (worker --trace): input, redacted requests, HTTP attempts, answers, outcome')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .requiredOption('--event-id <id>', 'the Signal event id')
    .option('--integration <id>', 'only this integration record id (default: every integration of the keyspace)')
    .option('--json', 'one JSON document per attempt (NDJSON), oldest first')
    .action(async (opts: TraceOptions) => {
      ctx.exitCode = await trace(ctx, opts);
    });
}

async function trace(ctx: Context, opts: TraceOptions): Promise<number> {
  const { io } = ctx;
  const url = checkRedisUrl(opts.redis);
  if (opts.integration !== undefined) {
    try {
      checkIntegrationId(opts.integration);
    } catch (e) {
      throw new CliError((e as Error).message);
    }
  }
  let found: StoredTrace[];
  try {
    const store = await createTraceStore({ url, prefix: opts.keyPrefix });
    try {
      found = await store.find(opts.eventId, opts.integration !== undefined ? [opts.integration] : undefined);
    } finally {
      await store.close();
    }
  } catch (e) {
    if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
    throw new CliError(`reading traces failed: ${(e as Error).message}`, EXIT.usage);
  }
  if (!found.length) {
    io.stderr.write(safe(`no trace of event '${opts.eventId}'${opts.integration ? ` in integration '${opts.integration}'` : ''} (workers record traces only with --trace; they expire)`) + '\n');
    return EXIT.failed;
  }
  for (const t of found) io.stdout.write(opts.json ? JSON.stringify(t) + '\n' : traceText(t));
  return EXIT.ok;
}

/** One attempt as text: the header, the shared trace body (cli/trace-text.ts), what happened next. */
export function traceText(s: StoredTrace): string {
  let out = indent(0, `── ${s.event_id}  ${s.integration_id} (${s.integration}, ${s.vendor})  attempt ${s.attempt}/${s.max_attempts}  ${s.trace.at}  worker ${s.worker}  job ${s.job_id}`);
  out += eventTraceText(s.trace);
  out += indent(2, `then: ${s.disposition}${s.next_attempt_in_ms !== undefined ? ` (next attempt in ${Math.round(s.next_attempt_in_ms / 1000)} s)` : ''}`);
  return out;
}
