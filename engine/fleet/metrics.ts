/**
 * Prometheus metrics of a delivery worker (prom-client), served over HTTP for scraping. Names and labels
 * an operator can alert on (per integration, status, reason): success rate, error rate, DLQ depth.
 *
 * Sources, without reaching into the engine: outcomes from the worker; per-HTTP-attempt latency from the
 * engine's `outcome` event detail; token requests from the engine's token cache counter; rate-limit waits
 * from a diagnostics channel the transport publishes on; queue depths from the queue on each scrape.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
// Types only: prom-client is loaded by createFleetMetrics, so embedded use never pays for it.
import type { Registry } from 'prom-client';
import type { Engine } from '../engine.js';
import { RATE_LIMIT_WAIT_CHANNEL } from '../run/http.js';
import type { Outcome, OutcomeDetail } from '../run/outcome.js';
import type { DeliveryQueue, QueueStatus } from './queue.js';
import type { FleetOutcome } from './worker.js';

export interface FleetMetricsOptions {
  engine: Engine;
  queue: DeliveryQueue;
  /**
   * Integration ids whose queues are reported (the `integration` label is always the record's id); a
   * function for a worker whose set changes (it follows a registry).
   */
  integrations: readonly string[] | (() => readonly string[]);
  /** Display names by id, exported as `signal_integration_info{integration, name}` (a label, never a key). */
  names?: ReadonlyMap<string, string> | ((id: string) => string | undefined);
  /** In-flight deliveries of this process, per integration. */
  inFlight?: (integration: string) => number;
  /** Add Node's process metrics (CPU, memory, event loop lag) under prom-client's default names. Default true. */
  processMetrics?: boolean;
  /**
   * Readiness checks for `GET /readyz`: each resolves true when fine, or a short reason (draining, Redis
   * unreachable, records not loaded). Default: the queue answers a ping within 1 s.
   */
  ready?: () => Promise<Record<string, true | string>>;
  /** An integration's circuit state, for `signal_circuit_open{integration}`. */
  circuit?: (integration: string) => string | undefined;
  /** Package version for `signal_build_info`. */
  version?: string;
}

export interface FleetMetrics {
  readonly registry: Registry;
  /** Count a queue attempt's outcome (pass the worker's onOutcome here). */
  observe(o: FleetOutcome): void;
  /** Serve /metrics on host:port (port 0: any free port); resolves with the URL. */
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export async function createFleetMetrics(opts: FleetMetricsOptions): Promise<FleetMetrics> {
  const ids = (): readonly string[] => (typeof opts.integrations === 'function' ? opts.integrations() : opts.integrations);
  const nameOf = (id: string): string => (typeof opts.names === 'function' ? opts.names(id) : opts.names?.get(id)) ?? '';
  const { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } = await import('prom-client');
  const registry = new Registry();
  // prom-client's default names (process_*, nodejs_*): what stock Node.js dashboards read.
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  new Gauge({ name: 'signal_build_info', help: 'Always 1; the version of signal-integrations this worker runs', labelNames: ['version'] as const, registers: [registry] }).set({ version: opts.version ?? 'unknown' }, 1);

  const outcomes = new Counter({
    name: 'signal_outcomes_total',
    help: 'Queue attempts by outcome: status (delivered, skipped, failed), reason, and disposition (delivered, skipped, retry_scheduled, dead_lettered)',
    labelNames: ['integration', 'status', 'reason', 'disposition'] as const,
    registers: [registry],
  });
  const possiblyDuplicated = new Counter({
    name: 'signal_possibly_duplicated_total',
    help: 'Settled attempts flagged possibly duplicated at the vendor',
    labelNames: ['integration'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'signal_request_duration_seconds',
    help: 'HTTP request latency by stage (every attempt, retries included)',
    labelNames: ['integration', 'stage'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  let tokensSeen = 0;
  new Counter({
    name: 'signal_token_requests_total',
    help: 'Token requests this process made (one per credential key per token lifetime when the cache works)',
    registers: [registry],
    collect() {
      const n = (opts.engine.tokens as { fetches?: number } | undefined)?.fetches ?? 0;
      if (n > tokensSeen) this.inc(n - tokensSeen);
      tokensSeen = Math.max(tokensSeen, n);
    },
  });
  const waits = new Counter({ name: 'signal_rate_limit_waits_total', help: 'Requests that waited for the rate limiter', registers: [registry] });
  const waited = new Counter({ name: 'signal_rate_limit_wait_seconds_total', help: 'Time requests spent waiting for the rate limiter', registers: [registry] });
  const onWait = (m: unknown): void => {
    const ms = (m as { wait_ms?: number })?.wait_ms;
    if (typeof ms !== 'number') return;
    waits.inc();
    waited.inc(ms / 1000);
  };
  subscribe(RATE_LIMIT_WAIT_CHANNEL, onWait);

  let trips = 0;
  new Counter({
    name: 'signal_queue_round_trips_total',
    help: 'Requests this process sent to the queue server (a pipeline counts once)',
    registers: [registry],
    collect() {
      const n = opts.queue.roundTrips;
      if (n > trips) this.inc(n - trips);
      trips = Math.max(trips, n);
    },
  });
  // Fleet-wide gauges (queue depths, dead letters) are the same whichever worker reads them: only the
  // worker holding the keyspace's short `metrics` lease exports them, so sum() over workers adds up. One
  // status read per scrape serves every queue gauge (prom-client collects them concurrently).
  let reading: { at: number; p: Promise<Map<string, QueueStatus> | undefined> } | undefined;
  let exporter = false;
  const statuses = (): Promise<Map<string, QueueStatus> | undefined> => {
    if (!reading || Date.now() - reading.at > 250) {
      reading = {
        at: Date.now(),
        p: (async () => {
          exporter = opts.queue.lease ? await opts.queue.lease('metrics', 60_000) : true;
          if (!exporter) return new Map<string, QueueStatus>();
          const m = new Map<string, QueueStatus>();
          const all = opts.queue.lease ? await opts.queue.integrations() : ids();
          for (let i = 0; i < all.length; i += 50) {
            const chunk = all.slice(i, i + 50);
            const got = await Promise.all(chunk.map((id) => opts.queue.status(id)));
            chunk.forEach((id, j) => m.set(id, got[j]!));
          }
          return m;
        })().catch(() => undefined),
      };
    }
    return reading.p;
  };
  new Gauge({
    name: 'signal_fleet_gauges_exporter',
    help: '1 on the one worker that exports the fleet-wide gauges (signal_queue_depth, signal_dead_letter_depth) for the keyspace, 0 on the others',
    registers: [registry],
    async collect() {
      await statuses();
      this.set(exporter ? 1 : 0);
    },
  });
  new Gauge({
    name: 'signal_queue_depth',
    help: 'Events per integration queue by state: waiting, in_flight (all workers), scheduled_retry; exported by one worker of the fleet only (sum adds up)',
    labelNames: ['integration', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [name, s] of (await statuses()) ?? []) {
        this.set({ integration: name, state: 'waiting' }, s.waiting);
        this.set({ integration: name, state: 'in_flight' }, s.in_flight);
        this.set({ integration: name, state: 'scheduled_retry' }, s.scheduled_retry);
      }
    },
  });
  new Gauge({
    name: 'signal_dead_letter_depth',
    help: 'Events in the dead-letter queue; exported by one worker of the fleet only (sum adds up)',
    labelNames: ['integration'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [name, s] of (await statuses()) ?? []) this.set({ integration: name }, s.dead_lettered);
    },
  });
  new Gauge({
    name: 'signal_queue_scrape_ok',
    help: '1 when the queue depths of this scrape could be read',
    registers: [registry],
    async collect() {
      this.set((await statuses()) ? 1 : 0);
    },
  });
  new Gauge({
    name: 'signal_worker_in_flight',
    help: 'Deliveries in flight in this process',
    labelNames: ['integration'] as const,
    registers: [registry],
    collect() {
      if (opts.inFlight) for (const id of ids()) this.set({ integration: id }, opts.inFlight(id));
    },
  });

  new Gauge({
    name: 'signal_integration_info',
    help: "1 per integration this worker serves: its id (the label every other metric uses) and the record's display name",
    labelNames: ['integration', 'name'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const id of ids()) this.set({ integration: id, name: nameOf(id) }, 1);
    },
  });

  new Gauge({
    name: 'signal_circuit_open',
    help: "1 while an integration's circuit is open or half open in this worker (its vendor looks down: events wait)",
    labelNames: ['integration'] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (opts.circuit) for (const id of ids()) this.set({ integration: id }, opts.circuit(id) === undefined || opts.circuit(id) === 'closed' ? 0 : 1);
    },
  });

  // Zeros for every known integration, so that rate() and absent-traffic alerts have a series from the start.
  const zeroed = new Set<string>();
  const zeroCounters = (): void => {
    for (const id of ids()) {
      if (zeroed.has(id)) continue;
      zeroed.add(id);
      outcomes.inc({ integration: id, status: 'delivered', reason: '', disposition: 'delivered' }, 0);
      outcomes.inc({ integration: id, status: 'failed', reason: '', disposition: 'dead_lettered' }, 0);
      possiblyDuplicated.inc({ integration: id }, 0);
    }
  };
  zeroCounters();

  // Label by the record's id: a name is a label two tenants may share (embedded records without an id keep their name).
  const labelOf = (o: Outcome): string => o.integration_id ?? o.integration;
  const onOutcome = (o: Outcome, detail: OutcomeDetail): void => {
    for (const a of detail.attempts) latency.observe({ integration: labelOf(o), stage: a.stage }, a.duration_ms / 1000);
  };
  opts.engine.on('outcome', onOutcome);

  const readiness = async (): Promise<Record<string, true | string>> => {
    if (opts.ready) return opts.ready();
    if (!opts.queue.ping) return { queue: true };
    return { queue: await opts.queue.ping(1_000).then(() => true as const, (e: unknown) => `unreachable: ${(e as Error).message}`) };
  };

  let server: http.Server | undefined;
  return {
    registry,
    observe(o) {
      outcomes.inc({ integration: labelOf(o), status: o.status, reason: o.reason ?? '', disposition: o.disposition });
      if (o.possibly_duplicated) possiblyDuplicated.inc({ integration: labelOf(o) });
    },
    async listen(port, host = '127.0.0.1') {
      server = http.createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0];
        if (req.method === 'GET' && path === '/healthz') {
          // The event loop answered: the process is alive.
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
          return;
        }
        if (req.method === 'GET' && path === '/readyz') {
          readiness().then(
            (checks) => {
              const ok = Object.values(checks).every((v) => v === true);
              res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: ok, checks }) + '\n');
            },
            (e: unknown) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready: false, checks: { error: (e as Error).message } }) + '\n'),
          );
          return;
        }
        if (req.method !== 'GET' || path !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics, /healthz or /readyz\n');
          return;
        }
        zeroCounters();
        // Scrapes go first (ahead of the queues of the gauges) and never throw into the server.
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(e as Error).message}\n`),
        );
      });
      await new Promise<void>((resolve, reject) => {
        server!.once('error', reject);
        server!.listen(port, host, () => resolve());
      });
      const a = server.address() as AddressInfo;
      return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`;
    },
    async close() {
      unsubscribe(RATE_LIMIT_WAIT_CHANNEL, onWait);
      opts.engine.off('outcome', onOutcome);
      if (server) await new Promise<void>((r) => server!.close(() => r()));
    },
  };
}
