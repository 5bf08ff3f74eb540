/**
 * `tap`: follow the fleet's outcomes live, as every worker settles them (like `vector tap`). It reads the
 * per-integration outcome streams the workers already write (`<prefix>{<id>}:outcomes`) with XREAD over
 * all of them on one connection — one blocking command for up to 1,000 integrations; more are read in
 * pages of 1,000 without blocking, a quarter second apart — and looks for new integrations every 2 s.
 * Nothing is added to the workers' hot path. It starts at the moment it is run (stream ids are times), so
 * an integration seen later loses nothing from then on. Filters: `--integration ID`, `--status`.
 * Text lines are escaped (cli/text.ts `safe`); `--json` prints each outcome as the worker wrote it.
 * SIGINT/SIGTERM ends it cleanly (exit 0). On Redis Cluster give `--integration` (one slot per read).
 *
 * `--trace`: under each outcome, that attempt's trace as `worker --trace` stored it (input, redacted requests,
 * HTTP attempts, answers, outcome: `trace`'s text view), or in `--json` a `trace` field (null when none was
 * stored). A worker stores a trace just after it settles the attempt, so each is looked up for up to 2 s
 * (lookups run side by side; lines keep their order).
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import type { Redis } from 'ioredis';
import { createTraceStore, SignalError, type FleetOutcome, type StoredTrace, type TraceStore } from '../../engine/index.js';
import { connectRedis } from '../../engine/fleet/connect.js';
import { checkIntegrationId } from '../../engine/fleet/redis-queue.js';
import { parseStoreKey, unseal } from '../../engine/store/seal.js';
import type { Context } from '../context.js';
import { checkRedisUrl } from '../fleet.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { CliError, EXIT } from '../io.js';
import { safe } from '../text.js';
import { traceText } from './trace.js';

interface TapOptions {
  redis: string;
  keyPrefix: string;
  integration?: string[];
  status?: 'delivered' | 'failed' | 'skipped';
  json?: boolean;
  trace?: boolean;
}

const PAGE = 1_000;
/** How long a trace is looked for after its outcome was read, and how often. */
const TRACE_WAIT_MS = 2_000;
const TRACE_POLL_MS = 100;
/** Outcomes waiting for their trace before reading pauses. */
const MAX_PENDING_TRACES = 256;

export function registerTap(program: Command, ctx: Context): void {
  program
    .command('tap')
    .description('follow outcomes live as every worker settles them, until Ctrl-C')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--integration <id>', 'only this integration record id; repeat for several (default: every integration, new ones included)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--status <status>', 'only outcomes with this status').choices(['delivered', 'failed', 'skipped']))
    .option('--json', 'one JSON outcome per line, as the worker recorded it')
    .option('--trace', "with each outcome, that attempt's trace (workers run with --trace): input, redacted requests, HTTP attempts, answers; `trace` field with --json")
    .action(async (opts: TapOptions) => {
      ctx.exitCode = await tap(ctx, opts);
    });
}

export function tapLine(o: FleetOutcome): string {
  const parts = [new Date().toISOString(), o.integration_id ?? o.integration, o.event_id ?? '-', o.event ?? '-', o.status, o.disposition, `attempt ${o.attempt}/${o.max_attempts}`];
  if (o.http_status !== undefined) parts.push(`HTTP ${o.http_status}`);
  if (o.response_id !== undefined) parts.push(`id=${o.response_id}`);
  if (o.status !== 'delivered') parts.push(`${o.reason ?? 'unknown'}${o.message ? ` — ${o.message}` : ''}${o.hint ? ` — hint: ${o.hint.replace(/\s+/g, ' ').trim()}` : ''}`);
  if (o.next_attempt_in_ms !== undefined) parts.push(`next attempt in ${Math.round(o.next_attempt_in_ms / 1000)} s`);
  if (o.possibly_duplicated) parts.push('possibly-duplicated');
  return safe(parts.join('  '));
}

async function tap(ctx: Context, opts: TapOptions): Promise<number> {
  const { io } = ctx;
  const url = checkRedisUrl(opts.redis);
  try {
    for (const id of opts.integration ?? []) checkIntegrationId(id);
  } catch (e) {
    throw new CliError((e as Error).message);
  }
  const sealKey = process.env.SIGNAL_STORE_KEY ? parseStoreKey(process.env.SIGNAL_STORE_KEY) : undefined;
  let redis: Redis;
  try {
    // Persistent: a tap rides out a Redis restart; an unreachable Redis at start is exit 2.
    redis = await connectRedis(url, { persistent: true });
  } catch (e) {
    if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
  let traces: TraceStore | undefined;
  if (opts.trace) {
    try {
      traces = await createTraceStore({ url, prefix: opts.keyPrefix });
    } catch (e) {
      redis.disconnect();
      if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
      throw e;
    }
  }
  let stopping = false;
  let wakeStop: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (wakeStop = r));
  const onSignal = (): void => {
    stopping = true;
    wakeStop();
    redis.disconnect(); // ends a blocking XREAD now
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const prefix = opts.keyPrefix;
  const streamOf = (id: string) => `${prefix}{${id}}:outcomes`;
  // Stream ids are `<ms>-<seq>`: from now on, for every stream, including those found later.
  const from = `${Date.now()}-0`;
  const cursors = new Map<string, string>();
  const fixed = opts.integration?.length ? opts.integration : undefined;
  let lastList = 0;
  const refresh = async (): Promise<void> => {
    const ids = fixed ?? (await redis.smembers(`${prefix}integrations`));
    for (const id of ids) if (!cursors.has(streamOf(id))) cursors.set(streamOf(id), from);
    lastList = Date.now();
  };
  const print = (stream: string, fields: string[]): void => {
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i] !== 'o') continue;
      let text = fields[i + 1]!;
      if (text.startsWith('gcm1:')) {
        const open = sealKey ? unseal(sealKey, stream, text) : undefined;
        if (open === undefined) continue; // sealed with a key we do not have
        text = open;
      }
      let o: FleetOutcome;
      try {
        o = JSON.parse(text) as FleetOutcome;
      } catch {
        continue;
      }
      if (opts.status && o.status !== opts.status) continue;
      if (!traces) io.stdout.write((opts.json ? JSON.stringify(o) : tapLine(o)) + '\n');
      else withTrace(o, traces);
    }
  };
  // Outcomes printed with their traces, in the order read; each trace looked up as soon as its outcome is read.
  let printed: Promise<void> = Promise.resolve();
  let pending = 0;
  const withTrace = (o: FleetOutcome, store: TraceStore): void => {
    const found = traceOf(store, o, () => stopping);
    pending++;
    printed = printed.then(async () => {
      const t = await found;
      pending--;
      if (opts.json) io.stdout.write(JSON.stringify({ ...o, trace: typeof t === 'object' ? t.trace : null, ...(typeof t === 'object' ? { trace_worker: t.worker } : {}) }) + '\n');
      else io.stdout.write(tapLine(o) + '\n' + (typeof t === 'object' ? traceText(t) : `  (${safe(t)})\n`));
    });
  };
  try {
    await refresh();
    io.stderr.write(safe(`tapping ${fixed ? fixed.length : 'every'} integration${fixed?.length === 1 ? '' : 's'} of '${prefix}' (${cursors.size} now); Ctrl-C to stop`) + '\n');
    while (!stopping) {
      if (!fixed && Date.now() - lastList >= 2_000) await refresh();
      const streams = [...cursors.keys()];
      if (!streams.length) {
        await Promise.race([stopped, new Promise((r) => setTimeout(r, 1_000))]);
        continue;
      }
      let got = 0;
      for (let i = 0; i < streams.length && !stopping; i += PAGE) {
        const page = streams.slice(i, i + PAGE);
        const block = streams.length <= PAGE ? ['BLOCK', '1000'] : [];
        const res = (await (redis.call as (...a: string[]) => Promise<unknown>)('XREAD', 'COUNT', '500', ...block, 'STREAMS', ...page, ...page.map((s) => cursors.get(s)!))) as
          | [string, [string, string[]][]][]
          | null;
        for (const [stream, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            cursors.set(stream, id);
            print(stream, fields);
            got++;
          }
        }
      }
      if (!got && streams.length > PAGE) await Promise.race([stopped, new Promise((r) => setTimeout(r, 250))]);
      if (pending >= MAX_PENDING_TRACES) await Promise.race([stopped, printed]);
    }
  } catch (e) {
    if (!stopping) throw new CliError(`reading outcomes failed: ${(e as Error).message}`, EXIT.usage);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    redis.disconnect();
    if (traces) {
      // Outcomes already read are printed (their lookups end early once stopping), then the store closes.
      await Promise.race([printed, new Promise((r) => setTimeout(r, TRACE_WAIT_MS + 500).unref())]);
      await traces.close();
    }
  }
  return EXIT.ok;
}

/** The stored trace of this very attempt (job and attempt number), or why there is none. */
async function traceOf(store: TraceStore, o: FleetOutcome, stopping: () => boolean): Promise<StoredTrace | string> {
  if (o.event_id === null || o.integration_id === undefined) return 'no trace: the event has no id';
  const until = Date.now() + TRACE_WAIT_MS;
  for (;;) {
    try {
      const all = await store.find(o.event_id, [o.integration_id]);
      const mine = all.find((t) => t.job_id === o.job_id && t.attempt === o.attempt);
      if (mine) return mine;
    } catch (e) {
      return `no trace: ${(e as Error).message}`;
    }
    if (stopping() || Date.now() >= until) return 'no trace stored for this attempt: run the workers with --trace';
    await new Promise((r) => setTimeout(r, TRACE_POLL_MS));
  }
}
