/**
 * Operators' view of the fleet's queues: `status` (counts per integration), `dead-letters` (NDJSON, as
 * `deliver --dead-letter` writes, plus each attempt's history) and `replay` (dead letters back onto the
 * queue with fresh attempts). `--integration` takes the record file; the queue is keyed by its `id` (the
 * record's `name` is shown beside it as a label).
 */
import type { Command } from 'commander';
import type { QueueStatus } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { checkRedisUrl, connectQueue, queueRecord, recordId, redisFailure } from '../fleet.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { safe } from '../text.js';
import { EXIT } from '../io.js';
import { integerOption } from '../options.js';

interface AdminOptions {
  redis: string;
  keyPrefix: string;
  integration?: string;
  json?: boolean;
  limit?: number;
  all?: boolean;
}

const COLUMNS: (keyof QueueStatus)[] = ['waiting', 'in_flight', 'scheduled_retry', 'delivered', 'failed', 'dead_lettered', 'skipped', 'enqueued', 'replayed'];

/** status, dead-letters and replay (each also registrable alone, for a lazy command table). */
export function registerQueueAdmin(program: Command, ctx: Context): void {
  registerStatus(program, ctx);
  registerDeadLetters(program, ctx);
  registerReplay(program, ctx);
}

export function registerStatus(program: Command, ctx: Context): void {
  program
    .command('status')
    .description('queue counts per integration: waiting, in_flight, scheduled_retry, delivered, failed, dead_lettered')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--integration <file>', 'integration record (JSON); default: every integration with a queue')
    .option('--json', 'print {"<integration id>": {name, waiting, in_flight, scheduled_retry, delivered, failed, dead_lettered, ...}}')
    .action(async (opts: AdminOptions) => {
      ctx.exitCode = await status(ctx, opts);
    });
}

export function registerDeadLetters(program: Command, ctx: Context): void {
  program
    .command('dead-letters')
    .description("print an integration's dead letters as NDJSON (deliver's dead-letter shape plus every attempt's history)")
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .option('--limit <n>', 'print at most this many (oldest first)', integerOption(1, 10_000_000))
    .action(async (opts: AdminOptions) => {
      ctx.exitCode = await deadLetters(ctx, opts);
    });
}

export function registerReplay(program: Command, ctx: Context): void {
  program
    .command('replay')
    .description("move an integration's retryable dead letters back onto its queue, with fresh attempts (--all: every one); prints how many")
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .option('--limit <n>', 'replay at most this many (oldest first)', integerOption(1, 10_000_000))
    .option('--all', 'also the dead letters whose failure the engine classed permanent (not retryable): fix the cause first')
    .option('--json', 'print {"integration", "replayed", "skipped_not_retryable", "dead_lettered"}')
    .action(async (opts: AdminOptions, cmd: Command) => {
      ctx.exitCode = await replay(ctx, cmd, opts);
    });
}

async function status(ctx: Context, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const only = opts.integration !== undefined ? await recordId(io, opts.integration) : undefined;
  const queue = await connectQueue(opts.redis, { prefix: opts.keyPrefix });
  try {
    const ids = only !== undefined ? [only] : await queue.integrations();
    const names = await queue.names();
    const out: Record<string, QueueStatus & { name: string | null }> = {};
    for (const id of ids) out[id] = { name: names[id] ?? null, ...(await queue.status(id)) };
    if (opts.json) {
      io.stdout.write(JSON.stringify(out) + '\n');
    } else if (!ids.length) {
      io.stdout.write('no integration has a queue yet (enqueue puts events on one)\n');
    } else {
      const label = (id: string) => safe(names[id] !== undefined ? `${id} (${names[id]})` : id);
      const width = Math.max(11, ...ids.map((id) => label(id).length));
      io.stdout.write([`${'integration'.padEnd(width)}`, ...COLUMNS.map((c) => c.padStart(Math.max(c.length, 8)))].join('  ') + '\n');
      for (const id of ids) {
        io.stdout.write([label(id).padEnd(width), ...COLUMNS.map((c) => String(out[id]![c]).padStart(Math.max(c.length, 8)))].join('  ') + '\n');
      }
    }
    return EXIT.ok;
  } catch (e) {
    throw redisFailure(e, opts.redis) ?? e;
  } finally {
    await queue.close();
  }
}

async function deadLetters(ctx: Context, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const id = await recordId(io, opts.integration!);
  const queue = await connectQueue(opts.redis, { prefix: opts.keyPrefix });
  try {
    const lines = await queue.deadLetters(id, opts.limit !== undefined ? { limit: opts.limit } : {});
    for (const l of lines) io.stdout.write(l + '\n');
    // Sealed with another SIGNAL_STORE_KEY (or none set here): shown as such, still sealed, never dropped.
    const sealed = lines.filter(isSealedDeadLetter).length;
    io.stderr.write(`${lines.length} dead ${lines.length === 1 ? 'letter' : 'letters'} for ${safe(id)}${lines.length ? ' (replay moves them back onto the queue)' : ''}\n`);
    if (sealed) {
      io.stderr.write(`${sealed} of them ${sealed === 1 ? 'is' : 'are'} sealed with another SIGNAL_STORE_KEY (or none is set here) and shown still sealed ("sealed"); run with the key the workers had\n`);
      return EXIT.failed;
    }
    return EXIT.ok;
  } catch (e) {
    throw redisFailure(e, opts.redis) ?? e;
  } finally {
    await queue.close();
  }
}

/** A line `deadLetters` gives for a dead letter it could not unseal (see redis-queue.ts). */
function isSealedDeadLetter(line: string): boolean {
  if (!line.startsWith('{"dead_letter":{"reason":"sealed_unreadable"')) return false;
  try {
    return typeof (JSON.parse(line) as { sealed?: unknown }).sealed === 'string';
  } catch {
    return false;
  }
}

async function replay(ctx: Context, cmd: Command, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  // Replayed events are stamped with this record's credential scope: the operator sends them with it.
  const engine = await loadEngine(ctx, cmd);
  let record;
  try {
    record = await queueRecord(io, opts.integration!, engine);
  } finally {
    engine.close();
  }
  const queue = await connectQueue(opts.redis, { prefix: opts.keyPrefix });
  try {
    const r = await queue.replay(record, { ...(opts.limit !== undefined ? { limit: opts.limit } : {}), ...(opts.all ? { all: true } : {}) });
    const left = (await queue.status(record.id)).dead_lettered;
    if (opts.json) {
      io.stdout.write(JSON.stringify({ integration: record.id, replayed: r.replayed, skipped_not_retryable: r.not_retryable, dead_lettered: left }) + '\n');
      return EXIT.ok;
    }
    const n = r.replayed;
    io.stdout.write(`replayed ${n} dead ${n === 1 ? 'letter' : 'letters'} onto the queue of ${safe(record.id)}\n`);
    if (r.not_retryable) {
      const them = r.not_retryable === 1 ? 'it' : 'them';
      io.stdout.write(`skipped ${r.not_retryable} not retryable (the engine classed the failure permanent: sending again fails the same way); fix the cause, then replay --all to include ${them}\n`);
    }
    const other = left - r.not_retryable;
    if (other > 0) io.stdout.write(`${other} left (without an event to send, sealed with another SIGNAL_STORE_KEY, or past --limit)\n`);
    return EXIT.ok;
  } catch (e) {
    throw redisFailure(e, opts.redis) ?? e;
  } finally {
    await queue.close();
  }
}
