/**
 * Operators' view of the fleet's queues: `status` (counts per integration), `dead-letters` (NDJSON, as
 * `deliver --dead-letter` writes, plus each attempt's history) and `replay` (dead letters back onto the
 * queue with fresh attempts). `--integration` takes the record file; the queue is named after its `name`.
 */
import type { Command } from 'commander';
import type { QueueStatus } from '../../engine/index.js';
import type { Context } from '../context.js';
import { checkRedisUrl, connectQueue, recordName } from '../fleet.js';
import { redisOption } from '../store.js';
import { EXIT } from '../io.js';
import { integerOption } from '../options.js';

interface AdminOptions {
  redis: string;
  integration?: string;
  json?: boolean;
  limit?: number;
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
    .option('--integration <file>', 'integration record (JSON); default: every integration with a queue')
    .option('--json', 'print {"<integration name>": {waiting, in_flight, scheduled_retry, delivered, failed, dead_lettered, ...}}')
    .action(async (opts: AdminOptions) => {
      ctx.exitCode = await status(ctx, opts);
    });
}

export function registerDeadLetters(program: Command, ctx: Context): void {
  program
    .command('dead-letters')
    .description("print an integration's dead letters as NDJSON (deliver's dead-letter shape plus every attempt's history)")
    .addOption(redisOption({ required: true }))
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .option('--limit <n>', 'print at most this many (oldest first)', integerOption(1, 10_000_000))
    .action(async (opts: AdminOptions) => {
      ctx.exitCode = await deadLetters(ctx, opts);
    });
}

export function registerReplay(program: Command, ctx: Context): void {
  program
    .command('replay')
    .description("move an integration's dead letters back onto its queue, with fresh attempts; prints how many")
    .addOption(redisOption({ required: true }))
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .option('--limit <n>', 'replay at most this many (oldest first)', integerOption(1, 10_000_000))
    .option('--json', 'print {"integration", "replayed"}')
    .action(async (opts: AdminOptions) => {
      ctx.exitCode = await replay(ctx, opts);
    });
}

async function status(ctx: Context, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const only = opts.integration !== undefined ? await recordName(io, opts.integration) : undefined;
  const queue = await connectQueue(opts.redis);
  try {
    const names = only !== undefined ? [only] : await queue.integrations();
    const out: Record<string, QueueStatus> = {};
    for (const name of names) out[name] = await queue.status(name);
    if (opts.json) {
      io.stdout.write(JSON.stringify(out) + '\n');
    } else if (!names.length) {
      io.stdout.write('no integration has a queue yet (enqueue puts events on one)\n');
    } else {
      const width = Math.max(11, ...names.map((n) => n.length));
      io.stdout.write([`${'integration'.padEnd(width)}`, ...COLUMNS.map((c) => c.padStart(Math.max(c.length, 8)))].join('  ') + '\n');
      for (const name of names) {
        io.stdout.write([name.padEnd(width), ...COLUMNS.map((c) => String(out[name]![c]).padStart(Math.max(c.length, 8)))].join('  ') + '\n');
      }
    }
    return EXIT.ok;
  } finally {
    await queue.close();
  }
}

async function deadLetters(ctx: Context, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const name = await recordName(io, opts.integration!);
  const queue = await connectQueue(opts.redis);
  try {
    const lines = await queue.deadLetters(name, opts.limit !== undefined ? { limit: opts.limit } : {});
    for (const l of lines) io.stdout.write(l + '\n');
    io.stderr.write(`${lines.length} dead ${lines.length === 1 ? 'letter' : 'letters'} for '${name}'${lines.length ? ' (replay moves them back onto the queue)' : ''}\n`);
    return EXIT.ok;
  } finally {
    await queue.close();
  }
}

async function replay(ctx: Context, opts: AdminOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const name = await recordName(io, opts.integration!);
  const queue = await connectQueue(opts.redis);
  try {
    const n = await queue.replay(name, opts.limit !== undefined ? { limit: opts.limit } : {});
    const left = (await queue.status(name)).dead_lettered;
    if (opts.json) io.stdout.write(JSON.stringify({ integration: name, replayed: n, dead_lettered: left }) + '\n');
    else io.stdout.write(`replayed ${n} dead ${n === 1 ? 'letter' : 'letters'} onto the queue of '${name}'${left ? `; ${left} left (without an event to send, or past --limit)` : ''}\n`);
    return EXIT.ok;
  } finally {
    await queue.close();
  }
}
