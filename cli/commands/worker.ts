/**
 * `worker`: consume integration records' queues until SIGTERM/SIGINT, delivering with the engine; many
 * worker processes share the queues. Outcomes go to stdout (one per queue attempt; `--json` as `deliver
 * --json`), structured logs (pino, JSON lines, secrets redacted) to stderr, metrics to `--metrics-port`.
 * SIGTERM/SIGINT drains (no new events; in-flight ones finish or are handed back) and exits 0; a second
 * signal hands the in-flight ones back at once.
 */
import { Option, type Command } from 'commander';
import { createFleetMetrics, createRecordRegistry, createTraceStore, displayRedisUrl, Engine, SignalError, startWorker, type EngineOptions, type FleetMetrics, type FleetOutcome, type RecordRegistry } from '../../engine/index.js';
import { specsDirs, type Context } from '../context.js';
import { checkRedisUrl, connectQueue, fleetStore, requireRecordId, waitForRedis } from '../fleet.js';
import { keyPrefixOption, redisOption } from '../store.js';
import { CliError, EXIT, readJsonFile } from '../io.js';
import { integerOption, secondsOption } from '../options.js';
import { safe } from '../text.js';
import { otelWanted, startOtel, type Otel } from '../otel.js';

interface WorkerOptions {
  redis: string;
  keyPrefix: string;
  integration?: string[];
  allRecords?: boolean;
  reconcileInterval: number;
  concurrency: number;
  maxInFlight: number;
  endpoint?: string;
  metricsPort?: number;
  metricsHost: string;
  json?: boolean;
  visibilityTimeout: number;
  drainTimeout: number;
  retryBackoff?: number;
  logLevel: string;
  trace?: boolean;
  otel?: boolean;
  traceTtl: number;
  traceMax: number;
}

/** Log fields that may hold secrets, wherever they appear. */
export const REDACT_PATHS = [
  'config',
  '*.config',
  'client_secret',
  '*.client_secret',
  'access_token',
  '*.access_token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'password',
  '*.password',
];

function outcomeText(o: FleetOutcome): string {
  // "delivered", "skipped"; a failure says where the event went next: "failed (retry_scheduled)".
  const what = o.status === o.disposition ? o.status : `${o.status} (${o.disposition})`;
  const parts = [o.integration_id ?? o.integration, o.event_id ?? '-', what, `attempt ${o.attempt}/${o.max_attempts}`];
  if (o.response_id !== undefined) parts.push(`id=${o.response_id}`);
  if (o.status !== 'delivered') parts.push(`${o.reason ?? 'unknown'}${o.message ? ` — ${o.message}` : ''}${o.hint ? ` — hint: ${o.hint.replace(/\s+/g, ' ').trim()}` : ''}`);
  if (o.next_attempt_in_ms !== undefined) parts.push(`next attempt in ${Math.round(o.next_attempt_in_ms / 1000)} s`);
  if (o.possibly_duplicated) parts.push('possibly-duplicated');
  return safe(parts.join('  '));
}

export function registerWorker(program: Command, ctx: Context): void {
  program
    .command('worker')
    .description('deliver events from the queues of integration records until SIGTERM/SIGINT (run several for a fleet)')
    .addOption(redisOption({ required: true }))
    .addOption(keyPrefixOption())
    .option('--integration <file>', 'integration record (JSON, with an id) whose queue to consume; repeat for several (a fixed set)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--all-records', 'consume every integration in the registry (records put) and follow its changes while running')
    .option('--reconcile-interval <seconds>', 'with --all-records: how often every record is compared with the registry (a missed change notification)', secondsOption(0.1, 3600), 30)
    .option('--concurrency <n>', 'deliveries in flight per integration', integerOption(1, 1024), 16)
    .option('--max-in-flight <n>', 'deliveries in flight in this worker, all integrations together (each gets its share)', integerOption(1, 100_000), 256)
    .option('--endpoint <url>', 'send every request to this base URL instead of the spec hosts (e.g. a local emulator)')
    .option('--metrics-port <n>', 'serve Prometheus metrics on GET /metrics at this port (0: any free port)', integerOption(0, 65535))
    .option('--metrics-host <address>', 'address the metrics server binds (0.0.0.0 to be scraped from other hosts)', '127.0.0.1')
    .option('--json', 'print one JSON outcome per queue attempt on stdout')
    .option('--visibility-timeout <seconds>', 'a lease not renewed for this long (its worker died) goes to another worker', secondsOption(0.1, 3600), 30)
    .option('--drain-timeout <seconds>', 'on SIGTERM/SIGINT, how long in-flight deliveries may finish before they are handed back', secondsOption(0, 600), 30)
    .addOption(new Option('--retry-backoff <ms>', "first wait between queue attempts, overriding the records' retry.queue.backoff_ms (drills, tests)").argParser(integerOption(0, 86_400_000)))
    .option('--trace', "store every attempt's trace in Redis (input, redacted requests, HTTP attempts, answers, outcome): see `trace --event-id`")
    .option('--trace-ttl <seconds>', 'with --trace: how long a trace is kept', secondsOption(1, 30 * 86_400), 86_400)
    .option('--trace-max <n>', 'with --trace: events traced per integration, at most (the oldest go first)', integerOption(1, 10_000_000), 10_000)
    .option('--otel', 'export OpenTelemetry spans (a delivery, each HTTP attempt) over OTLP/HTTP: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME... (docs/opentelemetry.md)')
    .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['debug', 'info', 'warn', 'error', 'silent']).default('info'))
    .action(async (opts: WorkerOptions, cmd: Command) => {
      ctx.exitCode = await worker(ctx, cmd, opts);
    });
}

async function worker(ctx: Context, cmd: Command, opts: WorkerOptions): Promise<number> {
  const { io } = ctx;
  const url = checkRedisUrl(opts.redis);
  if (!opts.integration?.length && !opts.allRecords) throw new CliError('give --all-records (every record of the registry, followed live) or --integration FILE (repeatable)');
  const records = [];
  for (const file of opts.integration ?? []) {
    const record = await readJsonFile(io, file, 'integration record');
    requireRecordId(record, file);
    records.push(record);
  }
  const { pino } = await import('pino');
  const log = pino(
    { level: opts.logLevel, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } },
    { write: (s: string) => void io.stderr.write(s) },
  );
  // A frozen Redis (it accepts connections, never answers) would hold every connect below silently.
  const waiting = new AbortController();
  const stopWaiting = (): void => waiting.abort();
  process.once('SIGINT', stopWaiting);
  process.once('SIGTERM', stopWaiting);
  let answered: boolean;
  try {
    answered = await waitForRedis(url, { prefix: opts.keyPrefix, signal: waiting.signal, log });
  } finally {
    process.off('SIGINT', stopWaiting);
    process.off('SIGTERM', stopWaiting);
  }
  if (!answered) {
    log.info({}, 'stopped while waiting for Redis: nothing was consumed');
    return EXIT.ok;
  }
  // Registered before the engine loads anything: every span from the first delivery on is exported.
  const otel: Otel | undefined = otelWanted(opts.otel) ? await startOtel('signal-integrations-worker', log) : undefined;
  let shared: Awaited<ReturnType<typeof fleetStore>>;
  try {
    shared = await fleetStore(url, opts.keyPrefix);
  } catch (e) {
    await otel?.shutdown();
    throw e;
  }
  let engine: Engine;
  let queue: Awaited<ReturnType<typeof connectQueue>>;
  try {
    engine = await Engine.load({ specs: specsDirs(ctx, cmd), ...shared.options } as EngineOptions);
  } catch (e) {
    await shared.close();
    throw e;
  }
  try {
    queue = await connectQueue(url, { prefix: opts.keyPrefix, visibilityTimeoutMs: Math.round(opts.visibilityTimeout * 1000), persistent: true });
  } catch (e) {
    engine.close();
    await shared.close();
    throw e;
  }
  let traces: Awaited<ReturnType<typeof createTraceStore>> | undefined;
  if (opts.trace) {
    try {
      traces = await createTraceStore({ url, prefix: opts.keyPrefix, ttlSeconds: opts.traceTtl, maxEvents: opts.traceMax, onError: (e) => log.warn({ err: e.message }, 'storing a trace failed') });
    } catch (e) {
      await queue.close();
      engine.close();
      await shared.close();
      throw e instanceof SignalError ? new CliError(e.message, EXIT.usage) : e;
    }
  }
  let registry: RecordRegistry | undefined;
  if (opts.allRecords) {
    try {
      registry = await createRecordRegistry({ url, prefix: opts.keyPrefix, persistent: true });
    } catch (e) {
      await queue.close();
      engine.close();
      await shared.close();
      if (e instanceof SignalError) throw new CliError(e.message, EXIT.usage);
      throw e;
    }
  }
  let metrics: FleetMetrics | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (!stopping) {
      log.info({ signal: sig }, 'stopping: draining in-flight deliveries (send the signal again to hand them back now)');
      stopping = true;
      stopRequested();
    } else {
      log.warn({ signal: sig }, 'handing in-flight deliveries back now');
      w?.hurry();
    }
  };
  let stopping = false;
  let stopRequested: () => void = () => undefined;
  const stopSignal = new Promise<void>((r) => (stopRequested = r));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let w: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    w = await startWorker({
      engine,
      queue,
      integrations: records,
      ...(registry ? { registry, reconcileMs: Math.round(opts.reconcileInterval * 1000) } : {}),
      concurrency: opts.concurrency,
      maxInFlight: opts.maxInFlight,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      visibilityTimeoutMs: Math.round(opts.visibilityTimeout * 1000),
      drainTimeoutMs: Math.round(opts.drainTimeout * 1000),
      ...(opts.retryBackoff !== undefined ? { retryBackoffMs: opts.retryBackoff } : {}),
      logger: log,
      ...(traces ? { trace: traces } : {}),
      onOutcome: (o) => {
        metrics?.observe(o);
        if (opts.json) {
          const { event_id, status, ...rest } = o;
          io.stdout.write(JSON.stringify({ event_id, status, ...rest }) + '\n');
        } else io.stdout.write(outcomeText(o) + '\n');
      },
    });
    const ids = (): string[] => w!.integrations.map((i) => i.id!);
    const nameOf = (id: string): string | undefined => w!.integration(id)?.name;
    if (opts.metricsPort !== undefined) {
      const { version } = await import('../run.js');
      metrics = await createFleetMetrics({
        engine,
        queue,
        integrations: ids,
        names: nameOf,
        inFlight: (id) => w!.inFlight(id),
        circuit: (id) => w!.circuit(id),
        version: version(),
        // Ready: not draining (a load balancer stops routing), Redis answers within 1 s, records loaded.
        ready: async () => ({
          draining: stopping ? 'draining: no new events are taken' : true,
          redis: await (queue.ping?.(1_000) ?? Promise.resolve()).then(() => true as const, (e: unknown) => `unreachable: ${(e as Error).message}`),
          records: true,
        }),
      });
      const at = await metrics.listen(opts.metricsPort, opts.metricsHost);
      log.info({ metrics: at }, 'metrics served');
    }
    log.info({ redis: displayRedisUrl(url), key_prefix: opts.keyPrefix, integrations: ids().slice(0, 100), integration_count: ids().length, all_records: Boolean(opts.allRecords), consumer: (queue as { consumer?: string }).consumer }, 'consuming');
    await stopSignal;
    await w.stop();
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
    await registry?.close();
    await traces?.close();
    await queue.close();
    engine.close();
    await shared.close();
    // After every delivery has ended: the last spans are exported before the process exits.
    await otel?.shutdown();
  }
}
