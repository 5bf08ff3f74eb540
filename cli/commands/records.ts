/**
 * `records put|list|rm`: the live registry of integration records in the fleet's Redis (engine/fleet/
 * registry.ts), which `worker --all-records` follows while it runs. `put` checks each record against its
 * spec exactly as `deliver` does before storing it (a bad record is refused, nothing of that call stored);
 * records are sealed with SIGNAL_STORE_KEY when it is set. `list` never shows a secret.
 */
import type { Command } from 'commander';
import { createRecordRegistry, SignalError, type IntegrationRecord, type RecordRegistry, type RegistryEntry } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { checkRedisUrl, connectQueue, requireRecordId } from '../fleet.js';
import { CliError, EXIT, readJsonFile } from '../io.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { safe } from '../text.js';

interface RecordsOptions {
  redis: string;
  keyPrefix: string;
  json?: boolean;
  purge?: boolean;
}

async function openRegistry(opts: RecordsOptions): Promise<RecordRegistry> {
  try {
    return await createRecordRegistry({ url: checkRedisUrl(opts.redis), prefix: opts.keyPrefix });
  } catch (e) {
    if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

export function registerRecords(program: Command, ctx: Context): void {
  const records = program.command('records').description('the registry of integration records that `worker --all-records` follows (in Redis)');
  records
    .command('put')
    .description("check records against their specs (as deliver does) and store them under their ids; prints the ids")
    .argument('<files...>', 'integration record files (JSON), each with an id')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--json', 'print [{id, name, vendor, enabled, updated_at, version}]')
    .action(async (files: string[], opts: RecordsOptions, cmd: Command) => {
      ctx.exitCode = await put(ctx, cmd, files, opts);
    });
  records
    .command('list')
    .description('id, name, vendor, enabled and updated_at of every stored record (never a secret)')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--json', 'print [{id, name, vendor, enabled, updated_at, version}]')
    .action(async (opts: RecordsOptions) => {
      ctx.exitCode = await list(ctx, opts);
    });
  records
    .command('rm')
    .description('remove records: workers stop taking their events; their queues are kept unless --purge')
    .argument('<ids...>', 'record ids')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--purge', "also delete each one's queue for good: waiting events, retries, dead letters, counts")
    .option('--json', 'print {"removed": [ids], "missing": [ids], "purged": {id: events}}')
    .action(async (ids: string[], opts: RecordsOptions) => {
      ctx.exitCode = await rm(ctx, ids, opts);
    });
}

async function put(ctx: Context, cmd: Command, files: string[], opts: RecordsOptions): Promise<number> {
  const { io } = ctx;
  checkRedisUrl(opts.redis);
  const engine = await loadEngine(ctx, cmd);
  const checked: unknown[] = [];
  const seen = new Map<string, string>();
  try {
    for (const file of files) {
      const record = await readJsonFile(io, file, 'integration record');
      const id = requireRecordId(record, file);
      if (seen.has(id)) throw new CliError(`'${file}' and '${seen.get(id)}' both have the id '${safe(id)}': one record per id`);
      seen.set(id, file);
      try {
        engine.createIntegration(record as IntegrationRecord); // the same checks (and errors) as deliver
      } catch (e) {
        if (e instanceof SignalError) throw new CliError(`${file}: ${e.message}`, EXIT.usage);
        throw e;
      }
      checked.push(record);
    }
  } finally {
    engine.close();
  }
  const registry = await openRegistry(opts);
  try {
    const entries = await registry.put(checked);
    if (opts.json) io.stdout.write(JSON.stringify(entries) + '\n');
    else for (const e of entries) io.stdout.write(`${safe(e.id)}\n`);
    io.stderr.write(`stored ${entries.length} ${entries.length === 1 ? 'record' : 'records'}\n`);
    return EXIT.ok;
  } finally {
    await registry.close();
  }
}

function table(entries: RegistryEntry[]): string {
  const rows = [['id', 'name', 'vendor', 'enabled', 'updated_at'], ...entries.map((e) => [e.id, e.name, e.vendor, String(e.enabled), e.updated_at].map(safe))];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

async function list(ctx: Context, opts: RecordsOptions): Promise<number> {
  const registry = await openRegistry(opts);
  try {
    const entries = await registry.list();
    if (opts.json) ctx.io.stdout.write(JSON.stringify(entries) + '\n');
    else if (!entries.length) ctx.io.stdout.write('no records stored yet (records put stores them)\n');
    else ctx.io.stdout.write(table(entries));
    return EXIT.ok;
  } finally {
    await registry.close();
  }
}

async function rm(ctx: Context, ids: string[], opts: RecordsOptions): Promise<number> {
  const registry = await openRegistry(opts);
  const queue = opts.purge ? await connectQueue(opts.redis, { prefix: opts.keyPrefix }) : undefined;
  try {
    const removed: string[] = [];
    const missing: string[] = [];
    const purged: Record<string, number> = {};
    for (const id of ids) {
      ((await registry.rm(id)) ? removed : missing).push(id);
      // The record is gone first, so no worker takes its events while the queue is deleted.
      if (queue?.purge) purged[id] = await queue.purge(id);
    }
    if (opts.json) ctx.io.stdout.write(JSON.stringify({ removed, missing, ...(queue ? { purged } : {}) }) + '\n');
    else {
      for (const id of removed) ctx.io.stdout.write(`removed ${safe(id)} ${queue ? `(its queue purged: ${purged[id]} events deleted)` : '(its queue is kept: events wait until it is put again)'}\n`);
      for (const id of missing) ctx.io.stderr.write(`no record '${safe(id)}'${queue ? `; its queue purged: ${purged[id]} events deleted` : ''}\n`);
    }
    return missing.length ? EXIT.failed : EXIT.ok;
  } finally {
    await queue?.close();
    await registry.close();
  }
}
