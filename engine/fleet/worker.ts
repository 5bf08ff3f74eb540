/**
 * A delivery worker: takes events from each integration's queue, delivers them with the engine, and
 * settles every queue attempt (one attempt = one `Integration.deliver`, with the engine's short
 * in-process retries inside it): done, rescheduled with backoff, or dead-lettered with every attempt's
 * reason, status and hint. Many workers (processes, hosts) share the queues; leases are renewed while a
 * delivery runs and taken over by another worker when their holder dies.
 *
 * stop() drains: no new leases, in-flight deliveries get `drainTimeoutMs` to finish, the rest are aborted
 * and handed back (not counted as an attempt, flagged possibly duplicated when a request had gone out).
 */
import { Engine, type EngineOptions } from '../engine.js';
import { REASONS } from '../errors.js';
import type { Integration } from '../run/integration.js';
import type { IntegrationRecord } from '../validate/record.js';
import type { Outcome } from '../run/outcome.js';
import { decideAfterAttempt } from '../policy/queue-retry.js';
import type { DeliveryQueue, Lease, QueuedEvent, Settlement } from './queue.js';
import { createRedisQueue } from './redis-queue.js';
import { Wake } from '../run/wake.js';
import { circuitAfter, circuitAllows, CLOSED, DEFAULT_CIRCUIT_POLICY, isOutage, type CircuitPolicy, type CircuitState } from '../policy/circuit.js';
import type { RecordRegistry } from './registry.js';
import { followRegistry } from './follow.js';
import type { Lane, WorkerLogger } from './lane.js';

export type { WorkerLogger } from './lane.js';
import { eventIdOf, type SignalEvent } from '../run/event.js';
import type { FleetTracer } from './trace.js';
import { extractContext } from '../run/otel.js';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { attemptNumber, deadLetterLine, errorText, fleetIdOf, mayHaveReachedVendor, queuePolicyOf, recordMismatch, safeEventId, summarize, type Disposition, type FleetOutcome } from './attempt.js';

export { deadLetterLine, fleetIdOf, mayHaveReachedVendor, queuePolicyOf, recordMismatch, type Disposition, type FleetAttemptInfo, type FleetOutcome } from './attempt.js';


export interface StartWorkerOptions {
  /** A loaded engine; or give `engineOptions` (e.g. with a shared `store`) and the worker loads one and closes it on stop. */
  engine?: Engine;
  engineOptions?: EngineOptions & Record<string, unknown>;
  /** Redis URL of the queues (or give `queue`). */
  redis?: string;
  /** The customer's key prefix (keyspace) when the worker connects the queue itself. Default `signal:`. */
  keyPrefix?: string;
  /** Another queue implementation (e.g. a Kafka consumer); the worker does not close one it was given. */
  queue?: DeliveryQueue;
  /** Integration records whose queues this worker consumes (one queue per record id): a fixed set. */
  integrations?: readonly unknown[];
  /**
   * Follow every record of this registry instead (or besides): new records are consumed, changed ones
   * apply to the next event taken, disabled or removed ones take no new events (their queues are kept).
   */
  registry?: RecordRegistry;
  /** How often the registry is reconciled against every record's version (missed notifications). Default 30 s. */
  reconcileMs?: number;
  /** Deliveries in flight per integration (a batching integration keeps a batch's worth per request). Default 16. */
  concurrency?: number;
  /** Deliveries in flight in this worker, all integrations together. Default 256. */
  maxInFlight?: number;
  /** Circuit breaker per integration (a vendor in outage pauses and is probed). */
  circuit?: Partial<CircuitPolicy>;
  /** Send every request to this base URL (local emulator). */
  endpoint?: string;
  /** Leases not renewed for this long go to another worker. Default 30 s. */
  visibilityTimeoutMs?: number;
  /** Overrides every record's `retry.queue.backoff_ms` (tests, drills). */
  retryBackoffMs?: number;
  /** How long stop() lets in-flight deliveries finish before aborting and handing them back. Default 30 s. */
  drainTimeoutMs?: number;
  /** Longest wait between looks at which queues have work, when no wake-up message arrives. Default 1 s. */
  pollMs?: number;
  onOutcome?: (outcome: FleetOutcome) => void;
  /** Record every attempt's trace here (fleet/trace.ts `createTraceStore`); off when absent. Not closed by the worker. */
  trace?: FleetTracer;
  logger?: WorkerLogger;
}

export interface FleetWorker {
  readonly queue: DeliveryQueue;
  readonly engine: Engine;
  /** The integrations this worker serves now (changes while it follows a registry). */
  readonly integrations: readonly Integration[];
  /** The integration served under this record id, if any. */
  integration(id: string): Integration | undefined;
  /** Deliveries in flight now: of one integration (by id), or of all. */
  inFlight(integration?: string): number;
  /** Counts of settled attempts by disposition, in this process. */
  readonly counts: Record<Disposition, number>;
  /** The circuit state of an integration (by id). */
  circuit(integration: string): CircuitState['state'] | undefined;
  /** Drain and stop (idempotent); resolves when nothing is held any more. */
  stop(): Promise<void>;
  /** Abort in-flight deliveries now and hand them back (a second SIGTERM). */
  hurry(): void;
}


const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref?.());
const SILENT: WorkerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

export async function startWorker(opts: StartWorkerOptions): Promise<FleetWorker> {
  const log = opts.logger ?? SILENT;
  const vt = opts.visibilityTimeoutMs ?? 30_000;
  const concurrency = Math.max(1, opts.concurrency ?? 16);
  const maxInFlight = Math.max(1, opts.maxInFlight ?? 256);
  const pollMs = opts.pollMs ?? 1_000;
  const drainMs = opts.drainTimeoutMs ?? 30_000;
  const reconcileMs = opts.reconcileMs ?? 30_000;
  const circuitPolicy: CircuitPolicy = { ...DEFAULT_CIRCUIT_POLICY, ...opts.circuit };
  if (!opts.queue && !opts.redis) throw new TypeError('startWorker: give `redis` (a URL) or `queue`');
  if (!opts.integrations?.length && !opts.registry) throw new TypeError('startWorker: give `integrations` (records) or a `registry` to follow');
  const ownsEngine = !opts.engine;
  const engine = opts.engine ?? (await Engine.load(opts.engineOptions ?? {}));
  const createOpts = opts.endpoint ? { endpoint: opts.endpoint } : {};

  /** Every integration this worker serves, by record id. */
  const lanes = new Map<string, Lane>();
  const newLane = (record: unknown, version?: string): Lane => {
    const integration = engine.createIntegration(record as IntegrationRecord, createOpts);
    return {
      name: fleetIdOf(integration),
      integration,
      ...(version !== undefined ? { version } : {}),
      policy: queuePolicyOf(record, opts.retryBackoffMs),
      window: integration.inFlightWindow(concurrency),
      inflight: new Map(),
      reserved: 0,
      circuit: CLOSED,
      retired: false,
      draining: [],
    };
  };
  try {
    for (const record of opts.integrations ?? []) {
      const lane = newLane(record);
      if (lanes.has(lane.name)) throw new TypeError(`two integration records have the id '${lane.name}': one queue per record id`);
      lanes.set(lane.name, lane);
    }
  } catch (e) {
    if (ownsEngine) engine.close();
    throw e;
  }
  const ownsQueue = !opts.queue;
  const queue = opts.queue ?? (await createRedisQueue({ url: opts.redis!, prefix: opts.keyPrefix, visibilityTimeoutMs: vt, persistent: true }));
  for (const lane of lanes.values()) await queue.ensure(lane.name, lane.integration.name);

  const counts: Record<Disposition, number> = { delivered: 0, skipped: 0, retry_scheduled: 0, dead_lettered: 0 };
  const abandon = new AbortController();
  const idle = new Wake();
  /** Wakes the scheduler: work queued somewhere, a slot freed, a record changed, stop. */
  const wake = new Wake();
  let stopping = false;
  let total = 0;
  let reservedTotal = 0;
  const inFlight = (id?: string) => (id === undefined ? total : (lanes.get(id)?.inflight.size ?? 0));

  /** Leases whose settle or hand-back has been sent: a renewal that finds them gone is not a loss. */
  const finishing = new WeakSet<Lease>();
  const renewing = new Set<Lane>();

  /** Give an event back to the queue without counting an attempt. */
  const handBack = async (lane: Lane, lease: Lease, maybeSent: boolean): Promise<void> => {
    finishing.add(lease);
    const pd = lease.message.possibly_duplicated || lease.reclaimed || maybeSent;
    try {
      const ok = await queue.release(lane.name, lease, { ...lease.message, ...(pd ? { possibly_duplicated: true } : {}) });
      if (!ok) log.warn({ integration: lane.name, job_id: lease.message.job_id }, 'lease lost before hand-back: another worker has the event');
    } catch (e) {
      log.error({ integration: lane.name, job_id: lease.message.job_id, err: (e as Error).message }, 'hand-back failed: the event returns after the visibility timeout');
    }
  };

  /** Of the ids a renewal no longer holds, those still in flight here and not being settled. */
  const stillLost = (lane: Lane, ids: readonly string[]): string[] =>
    ids.filter((id) => {
      const lease = lane.inflight.get(id);
      return lease !== undefined && !finishing.has(lease);
    });
  /**
   * Renew; warn only of leases really lost. A lease the renewal reports as not held may have been settled
   * meanwhile (after a Redis freeze, the settles queued behind it ran first): only one still in flight
   * here, not being settled, and reported again by a second renewal was taken over by another worker. A
   * renewal that fails (Redis away) loses nothing: the next tick renews again.
   */
  const renewLeases = async (lane: Lane, ids: readonly string[]): Promise<void> => {
    try {
      let lost = stillLost(lane, await queue.renew(lane.name, ids));
      if (lost.length) lost = stillLost(lane, await queue.renew(lane.name, lost));
      if (lost.length) log.warn({ integration: lane.name, lost: lost.length }, 'leases lost (held past the visibility timeout): other workers redo those events');
    } catch (e) {
      log.error({ integration: lane.name, err: (e as Error).message }, 'renewing leases failed (Redis unavailable?); retried at the next renewal');
    }
  };

  const settle = async (lane: Lane, lease: Lease, s: Settlement): Promise<boolean | undefined> => {
    finishing.add(lease);
    for (let i = 0; ; i++) {
      try {
        return await queue.settle(lane.name, lease, s);
      } catch (e) {
        if (i >= 4) {
          log.error({ integration: lane.name, job_id: lease.message.job_id, err: (e as Error).message }, 'outcome could not be recorded: the event is attempted again after the visibility timeout');
          return undefined;
        }
        await sleep(100 * 2 ** i);
      }
    }
  };

  /**
   * `Integration.deliver` never throws by contract; when something throws anyway (an engine bug, an event
   * it cannot handle, an `onOutcome` hook), the attempt counts like any failed one (`internal_error`,
   * retried on the queue's schedule, then dead-lettered), instead of the event coming back after every
   * visibility timeout forever. Flagged possibly duplicated: where it threw, a request may have gone out.
   */
  const deliverGuarded = async (lane: Lane, m: QueuedEvent, n: number): Promise<Outcome> => {
    const started = Date.now();
    try {
      // The OpenTelemetry span continues the enqueue's trace (the context the message carries): one trace per event.
      const otel = { parent: extractContext(m.trace_context) ?? ROOT_CONTEXT, attempt: n, job_id: m.job_id };
      return await lane.integration.deliver(m.event as SignalEvent, opts.trace ? { signal: abandon.signal, trace: opts.trace.begin(lane.name, m.job_id, n), otel } : { signal: abandon.signal, otel });
    } catch (e) {
      return {
        event_id: safeEventId(m.event),
        status: 'failed',
        integration: lane.integration.name,
        integration_id: lane.name,
        vendor: lane.integration.vendor,
        reason: REASONS.internal,
        message: `the delivery failed unexpectedly: ${errorText(e)}`,
        hint: 'an engine bug or an event the engine cannot handle; the attempt counts: retried on the queue schedule, then dead-lettered',
        retryable: true,
        attempts: 0,
        possibly_duplicated: true,
        duration_ms: Date.now() - started,
      };
    }
  };

  /** The attempt's outcome as the fleet reports it, and how it is settled (the queue's retry policy decides). */
  const settlementOf = (lane: Lane, lease: Lease, outcome: Outcome, n: number): { fo: FleetOutcome; s: Settlement } => {
    const m = lease.message;
    // Possibly duplicated at the vendor: an earlier attempt may have reached it (or the worker that held
    // this lease before died mid-delivery), or the engine retried a request that had gone out.
    const pd = Boolean(m.possibly_duplicated || lease.reclaimed || outcome.possibly_duplicated);
    const pdAfter = pd || mayHaveReachedVendor(outcome);
    const decision = decideAfterAttempt(lane.policy, n, outcome);
    const disposition: Disposition =
      decision.kind === 'done' ? (outcome.status === 'delivered' ? 'delivered' : 'skipped') : decision.kind === 'retry' ? 'retry_scheduled' : 'dead_lettered';
    const { possibly_duplicated: _pd, ...rest } = outcome;
    const fo: FleetOutcome = {
      ...rest,
      ...((disposition === 'delivered' || disposition === 'skipped' ? pd : pdAfter) ? { possibly_duplicated: true } : {}),
      job_id: m.job_id,
      attempt: n,
      max_attempts: lane.policy.max_attempts,
      disposition,
      ...(decision.kind === 'retry' ? { next_attempt_in_ms: decision.delay_ms } : {}),
    };
    const text = JSON.stringify(fo);
    let s: Settlement;
    if (decision.kind === 'done') s = { kind: 'done', status: outcome.status as 'delivered' | 'skipped', outcome: text };
    else {
      const history = [...m.history, summarize(outcome, n, mayHaveReachedVendor(outcome) || outcome.possibly_duplicated === true, m.replays)];
      if (decision.kind === 'retry') {
        s = { kind: 'retry', outcome: text, delay_ms: decision.delay_ms, message: { ...m, history, ...(pdAfter ? { possibly_duplicated: true } : {}) } };
      } else {
        s = { kind: 'dead', outcome: text, job_id: m.job_id, entry: deadLetterLine(fo, m, history, pdAfter, lease.unreadable) };
      }
    }
    // The queue writes the message back: a message that cannot be serialized must fail here, not there.
    if (s.kind === 'retry') JSON.stringify(s.message);
    return { fo, s };
  };

  /** A failed attempt whose outcome cannot be written as usual: dead-lettered with the queued message's text as `raw_line`. */
  const unwritable = (lane: Lane, lease: Lease, outcome: Outcome, n: number, e: unknown): { fo: FleetOutcome; s: Settlement } => {
    const m = lease.message;
    const pd = Boolean(m.possibly_duplicated || lease.reclaimed || outcome.possibly_duplicated || mayHaveReachedVendor(outcome));
    const failed: Outcome = {
      event_id: outcome.event_id,
      status: 'failed',
      integration: lane.integration.name,
      integration_id: lane.name,
      vendor: lane.integration.vendor,
      ...(outcome.event !== undefined ? { event: outcome.event } : {}),
      reason: REASONS.internal,
      message: `the attempt's outcome could not be recorded (${errorText(e)}): the queued event cannot be written back, so it is dead-lettered as it was queued (raw_line)${outcome.status === 'failed' && outcome.reason ? `; the attempt had failed with ${outcome.reason}` : ''}`,
      hint: 'an event the fleet cannot write back (e.g. nested too deep); fix it from raw_line and enqueue it again',
      retryable: false,
      attempts: outcome.attempts,
      duration_ms: outcome.duration_ms,
    };
    if (outcome.status !== 'failed') {
      // Done (delivered or skipped): only the outcome's extras could not be written; the event is finished.
      const { response: _r, ...plain } = outcome;
      const done: FleetOutcome = { ...plain, job_id: m.job_id, attempt: n, max_attempts: lane.policy.max_attempts, disposition: outcome.status };
      return { fo: done, s: { kind: 'done', status: outcome.status, outcome: JSON.stringify(done) } };
    }
    const fo: FleetOutcome = { ...failed, ...(pd ? { possibly_duplicated: true } : {}), job_id: m.job_id, attempt: n, max_attempts: lane.policy.max_attempts, disposition: 'dead_lettered' };
    const history = [...m.history, summarize(failed, n, pd, m.replays)];
    return { fo, s: { kind: 'dead', outcome: JSON.stringify(fo), job_id: m.job_id, entry: deadLetterLine(fo, m, history, pd, lease.unreadable ?? lease.raw ?? '') } };
  };

  const attempt = async (lane: Lane, lease: Lease): Promise<void> => {
    const m = lease.message;
    // Attempts count afresh after a replay; the history before it is kept (replayed_after entries).
    const n = attemptNumber(m);
    const mismatch = lease.unreadable === undefined ? recordMismatch(m, lane.name, lane.integration.credentialScope) : undefined;
    const outcome: Outcome =
      lease.unreadable !== undefined
        ? {
            event_id: null,
            status: 'failed',
            integration: lane.integration.name,
            integration_id: lane.name,
            vendor: lane.integration.vendor,
            ...(lease.sealed
              ? {
                  reason: REASONS.sealedUnreadable,
                  message: 'the queued message is sealed with a SIGNAL_STORE_KEY this worker does not have (another key, or none): it cannot be read here; nothing was sent, and it is kept sealed in raw_line',
                  hint: 'give every worker and command the same SIGNAL_STORE_KEY; `replay` run with the key that sealed it puts the event back on the queue',
                }
              : { reason: REASONS.invalidEvent, message: 'the queued message is not a queued event (written by something other than enqueue)' }),
            retryable: false,
            attempts: 0,
            duration_ms: 0,
          }
        : mismatch !== undefined
          ? {
              event_id: eventIdOf(m.event),
              status: 'failed',
              integration: lane.integration.name,
              integration_id: lane.name,
              vendor: lane.integration.vendor,
              reason: REASONS.recordMismatch,
              message: `not sent: ${mismatch}`,
              hint: 'nothing was sent. If the record was changed on purpose, replay the dead letters with the current record (replay --integration); otherwise restore the record the events were enqueued for',
              // Retried on the queue's schedule: a registry that is catching up gets the right record back.
              retryable: true,
              attempts: 0,
              duration_ms: 0,
            }
          : await deliverGuarded(lane, m, n);
    if (abandon.signal.aborted && outcome.reason === REASONS.interrupted) {
      // Aborted mid-request: the request may be at the vendor already (as `deliver` flags its abandoned lines).
      await handBack(lane, lease, true);
      return;
    }
    if (lease.unreadable === undefined && mismatch === undefined) {
      const outage = isOutage(outcome);
      const wasOpen = lane.circuit.state === 'open';
      lane.circuit = circuitAfter(lane.circuit, circuitPolicy, Date.now(), outage);
      if (outage && wasOpen) {
        // The vendor is known to be down: this event goes back to wait for the circuit, no attempt spent.
        await handBack(lane, lease, mayHaveReachedVendor(outcome) || outcome.possibly_duplicated === true);
        return;
      }
      if (lane.circuit.state === 'open' && !wasOpen) {
        log.warn({ integration: lane.name, failures: lane.circuit.failures, reopen_in_ms: lane.circuit.until - Date.now(), reason: outcome.reason, http_status: outcome.http_status }, 'circuit open: the vendor looks down; events wait on the queue until a probe succeeds');
      }
    }
    let settling: { fo: FleetOutcome; s: Settlement };
    try {
      settling = settlementOf(lane, lease, outcome, n);
    } catch (e) {
      // The outcome cannot be written (the event cannot be serialized again, e.g. nested too deep): the
      // attempt still counts, and the event goes to the dead letters verbatim instead of coming back forever.
      settling = unwritable(lane, lease, outcome, n, e);
    }
    const { fo, s } = settling;
    const disposition = fo.disposition;
    const ok = await settle(lane, lease, s);
    if (ok === false) {
      log.warn({ integration: lane.name, job_id: m.job_id, event_id: outcome.event_id }, 'lease lost: another worker took the event over; this attempt is not recorded');
      return;
    }
    if (ok === undefined) return;
    counts[disposition]++;
    if (disposition === 'dead_lettered') {
      log.warn({ integration: lane.name, job_id: m.job_id, event_id: fo.event_id, reason: fo.reason, message: fo.message, hint: fo.hint, http_status: fo.http_status, attempt: n }, 'dead-lettered');
    }
    opts.trace?.settled(fo);
    try {
      opts.onOutcome?.(fo);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'onOutcome hook threw');
    }
  };

  const start = (lane: Lane, lease: Lease): void => {
    lane.inflight.set(lease.id, lease);
    total++;
    attempt(lane, lease)
      .catch((e: unknown) => log.error({ integration: lane.name, job_id: lease.message.job_id, err: (e as Error)?.message }, 'attempt failed unexpectedly: the event returns after the visibility timeout'))
      .finally(() => {
        lane.inflight.delete(lease.id);
        total--;
        if (!lane.inflight.size) forgetDrained(lane);
        wake.notify();
        idle.notify();
      });
  };

  /** Once a lane has nothing in flight: dispose the integrations it replaced, and forget it if retired. */
  const forgetDrained = (lane: Lane): void => {
    for (const old of lane.draining.splice(0)) void engine.dispose(old);
    if (lane.retired && lanes.get(lane.name) === lane) {
      lanes.delete(lane.name);
      void engine.dispose(lane.integration);
    }
  };

  /** How many events this lane may take now: its window, its circuit, the worker's cap. */
  const room = (lane: Lane, now: number): number => {
    if (lane.retired) return 0;
    const c = circuitAllows(lane.circuit, now);
    lane.circuit = c.state;
    return Math.max(0, Math.min(lane.window, c.max) - lane.inflight.size - lane.reserved);
  };

  /** Visit one integration: take what fits and start it. */
  const visit = async (lane: Lane, n: number): Promise<number> => {
    lane.reserved += n;
    reservedTotal += n;
    let leases: Lease[];
    try {
      leases = await queue.take(lane.name, n);
    } finally {
      lane.reserved -= n;
      reservedTotal -= n;
    }
    for (const lease of leases) {
      if (stopping) await handBack(lane, lease, lease.reclaimed);
      else start(lane, lease);
    }
    return leases.length;
  };

  /**
   * The scheduler: one loop for every integration. It asks the queue which integrations have work due
   * (one request, however many there are), visits those it serves that have room, sharing the worker's
   * free slots among them, and sleeps until the next due time, a wake-up message, or a freed slot.
   */
  const PAGE = 256;
  const schedule = async (): Promise<void> => {
    let failures = 0;
    let offset = 0;
    while (!stopping) {
      let nextInMs: number | undefined;
      let took = 0;
      let due = 0;
      try {
        const free = maxInFlight - total - reservedTotal;
        if (free > 0) {
          const ready = await queue.ready({ limit: PAGE, offset });
          nextInMs = ready.nextInMs;
          due = ready.ids.length;
          const now = Date.now();
          const eligible: [Lane, number][] = [];
          for (const id of ready.ids) {
            const lane = lanes.get(id);
            const r = lane ? room(lane, now) : 0;
            if (lane && r > 0) eligible.push([lane, r]);
          }
          // A page of integrations this worker cannot serve now: look further down the list.
          offset = !eligible.length && due === PAGE && offset < PAGE * 16 ? offset + PAGE : 0;
          if (offset) continue;
          // The free slots go to the integrations due longest, each up to its own room (its window): a
          // busy or hanging one never holds more than its share, and one visit takes what it can.
          for (let i = 0; i < eligible.length && !stopping; ) {
            const batch: [Lane, number][] = [];
            let left = maxInFlight - total - reservedTotal;
            for (; i < eligible.length && batch.length < 16 && left > 0; i++) {
              const n = Math.min(eligible[i]![1], left);
              batch.push([eligible[i]![0], n]);
              left -= n;
            }
            if (!batch.length) break;
            const counts = await Promise.all(batch.map(([lane, n]) => visit(lane, n)));
            for (const c of counts) took += c;
          }
        }
        failures = 0;
      } catch (e) {
        if (stopping) break;
        log.error({ err: (e as Error).message }, 'reading the queues failed; retrying');
        await sleep(Math.min(2_000, 100 * 2 ** failures++));
        continue;
      }
      if (took > 0 && due > 0) continue; // more may be due right away
      const wait = Math.max(1, Math.min(pollMs, nextInMs ?? pollMs));
      await Promise.race([wake.wait(), sleep(wait)]);
    }
  };
  const unsubscribe = queue.onWork(() => wake.notify());

  // Renew the leases of deliveries in flight well before they expire.
  const renewTimer = setInterval(() => {
    for (const lane of lanes.values()) {
      // One renewal per lane at a time: while Redis does not answer (frozen, slow), renewals do not pile up
      // behind each other, each with the ids of its moment.
      if (renewing.has(lane)) continue;
      const ids = [...lane.inflight.keys()];
      if (!ids.length) continue;
      renewing.add(lane);
      void renewLeases(lane, ids).finally(() => renewing.delete(lane));
    }
  }, Math.max(50, Math.floor(vt / 3)));
  renewTimer.unref?.();

  // Following a registry: lanes for its records, kept up to date while the worker runs (follow.ts).
  const stopFollowing = opts.registry
    ? await followRegistry({ registry: opts.registry, reconcileMs, lanes, newLane, queue, log, forgetDrained, changed: () => wake.notify(), stopping: () => stopping })
    : (): void => undefined;

  // Streams with entries the scheduling set does not know of (written by another producer than enqueue,
  // or its entry lost): marked due at start, and every minute by the worker holding the `sweep` lease.
  const sweep = async (): Promise<void> => {
    if (!queue.sweep) return;
    const ids = [...lanes.keys()];
    const n = await queue.sweep(ids).catch((e: unknown) => (log.warn({ err: (e as Error).message }, 'sweeping the queues failed'), 0));
    if (n) wake.notify();
  };
  await sweep();
  const sweepTimer = setInterval(() => {
    void (queue.lease ? queue.lease('sweep', 55_000) : Promise.resolve(true)).then((mine) => (mine ? sweep() : undefined), () => undefined);
  }, 60_000);
  sweepTimer.unref?.();

  const loop = schedule();
  log.info({ integrations: [...lanes.keys()].slice(0, 100), integration_count: lanes.size, following_registry: Boolean(opts.registry), concurrency, max_in_flight: maxInFlight, visibility_timeout_ms: vt }, 'worker started');

  const waitIdle = async (deadline: number): Promise<boolean> => {
    while (inFlight() > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await Promise.race([idle.wait(), sleep(Math.min(left, 250))]);
    }
    return true;
  };

  let stopped: Promise<void> | undefined;
  const worker: FleetWorker = {
    queue,
    engine,
    get integrations() {
      return [...lanes.values()].filter((l) => !l.retired).map((l) => l.integration);
    },
    integration: (id: string) => {
      const lane = lanes.get(id);
      return lane && !lane.retired ? lane.integration : undefined;
    },
    inFlight: (id?: string) => inFlight(id),
    counts,
    circuit: (id: string) => lanes.get(id)?.circuit.state,
    hurry: () => abandon.abort(),
    stop: () => {
      stopped ??= (async () => {
        stopping = true;
        stopFollowing();
        wake.notify();
        log.info({ in_flight: inFlight() }, 'draining: no new events; in-flight deliveries finish or are handed back');
        // Batching integrations send what they hold now instead of at their timer.
        for (const lane of lanes.values()) void lane.integration.flush();
        if (!(await waitIdle(Date.now() + drainMs))) {
          log.warn({ in_flight: inFlight() }, 'drain timeout: aborting in-flight deliveries and handing them back');
          abandon.abort();
          await waitIdle(Date.now() + 10_000);
        }
        // A visit in progress ends with its events handed back; a Redis that is away must not hold us.
        await Promise.race([loop, sleep(pollMs + 2_000)]);
        unsubscribe();
        clearInterval(renewTimer);
        clearInterval(sweepTimer);
        if (ownsQueue) await queue.close();
        if (ownsEngine) engine.close();
        log.info({ ...counts }, 'worker stopped');
      })();
      return stopped;
    },
  };
  return worker;
}
