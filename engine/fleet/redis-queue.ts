/**
 * The delivery queue on Redis Streams consumer groups (Redis >= 6.2), one stream per integration record,
 * keyed by the record's stable `id` (never its display name: two tenants may name records alike, and a
 * rename must keep the queue). The prefix is the customer's keyspace (`signal:` by default).
 *
 * Keys (the `{id}` hash tag keeps one integration's keys in one cluster slot, so scripts may touch them all):
 *   <prefix>{<id>}:stream     the queue (XADD; consumer group `workers`: XREADGROUP, XACK, XAUTOCLAIM)
 *   <prefix>{<id>}:delayed    ZSET of scheduled retries: member = the message, score = when it is due
 *   <prefix>{<id>}:dead       ZSET job_id → when it was dead-lettered (order for listing); a second dead
 *                             letter with a job_id already there (two messages with one job_id, from a
 *                             producer other than enqueue) is kept beside it as <job_id>#<n>
 *   <prefix>{<id>}:dead:data  HASH job_id (or <job_id>#<n>) → the dead-letter line
 *   <prefix>{<id>}:stats      HASH of cumulative counts
 *   <prefix>{<id>}:outcomes   stream of every attempt's outcome (capped), for dashboards and audits
 *   <prefix>integrations      SET of integration ids that have a queue
 *   <prefix>names             HASH id → display name (labels for `status`)
 *   <prefix>active            ZSET id → when the integration next needs a visit (see below)
 *   <prefix>wake              pub/sub channel: new work was queued somewhere
 *
 * Reading many queues at the cost of one: a worker does not block on each stream (that took a connection
 * per integration and polled every idle one). `active` holds only integrations with something to do —
 * events waiting (due now), a retry scheduled (due then), leases held (due at the next take-over check) —
 * and a worker asks it which are due (`ready`, one command whatever the number of integrations), visits
 * those it serves (`take`: one script reads, takes over and promotes), and sleeps until the next due time or
 * a `wake` message. A visit first holds the entry (moves it a take-over interval ahead, so other workers
 * skip it), then reads; only an integration found empty is dropped, and only if its score is still the
 * hold's own: work queued during the visit moved it, so no wake-up is lost. An integration's own keys stay
 * in its slot; `active` is one key of the keyspace, updated beside them (not inside their scripts).
 *
 * Every acknowledged entry is also deleted from the stream, so XLEN − pending = waiting. Every state change
 * that must not be half-done (record the outcome + acknowledge; due retry → queue; dead letter → queue) is
 * one Lua script, and settling checks that the caller still holds the lease: an event ends exactly once.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
// Types only: ioredis is loaded when a queue connects, so embedded use (deliver, npm start) never pays for it.
import type { Redis } from 'ioredis';
import { connectRedis } from './connect.js';
import { enqueueSpan } from '../run/otel.js';
import { isSealed, parseStoreKey, seal, unseal } from '../store/seal.js';
import { checkIntegrationId, DEFAULT_KEY_PREFIX, GROUP, keyPrefixProblem, SCRIPTS, globalKeys, keys, type Entry, type Scripted, type ScriptedPipeline } from './redis-scripts.js';

import { Coalescer } from './coalesce.js';

interface DoneSettle { id: string; status: 'delivered' | 'skipped'; outcome: string }

/** Stream entry ids (ms-seq) in stream order. */
function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

type TakeResult = [claimed: Entry[], cursor: string, fresh: Entry[], waiting: number, pending: number, nextDelayed: string, now: number];
import type { DeliveryQueue, Lease, QueuedEvent, QueueRecord, QueueStatus, ReplayResult, Settlement } from './queue.js';
import { deadLetters, purge, replay, status, type OperatorAccess } from './redis-operator.js';

export { GROUP } from './redis-scripts.js';
/** A URL as it may be shown: every credential form ioredis reads (userinfo, ?password=, ?username=, ...) masked. */
export { displayRedisUrl } from '../policy/redis-url.js';

export interface RedisQueueOptions {
  /** redis:// or rediss:// URL. */
  url: string;
  /** Key prefix: the customer's keyspace (one per customer deployment). Default `signal:`. */
  prefix?: string;
  /** A lease not renewed for this long is taken over by another worker. Default 30 s. */
  visibilityTimeoutMs?: number;
  /** How often a consumer looks for leases to take over. Default: half the visibility timeout, at most 5 s. */
  claimIntervalMs?: number;
  /** @deprecated due retries are promoted when their integration is visited (at their due time). */
  promoteIntervalMs?: number;
  /** This consumer's name in the group. Default host:pid:random. */
  consumer?: string;
  /** Approximate cap of each integration's outcome stream. Default 100,000. */
  outcomesMaxLen?: number;
  /**
   * Keep retrying commands while Redis is away (a worker rides out a Redis restart). Default false:
   * commands fail fast, as a CLI command should.
   */
  persistent?: boolean;
  /**
   * Longest wait for Redis to answer a command (and to answer at all when connecting) before it fails with
   * `queue.timeout`: a frozen or overloaded Redis ends a CLI command instead of hanging it. Default 5 s;
   * a persistent queue (a worker) waits without a limit by default, since it rides Redis out.
   */
  commandTimeoutMs?: number;
  /**
   * 32 bytes (64 hex digits or base64): queued events are sealed at rest with it (AES-256-GCM) — stream
   * entries, scheduled retries and dead letters. Default: env SIGNAL_STORE_KEY (the key tokens are sealed
   * with). Without one they are stored as JSON; sealed and plain entries are both read.
   */
  encryptionKey?: string;
}

export { DEFAULT_COMMAND_TIMEOUT_MS } from './connect.js';

export { checkIntegrationId, DEFAULT_KEY_PREFIX, keyPrefixProblem } from './redis-scripts.js';

export class RedisQueue implements DeliveryQueue {
  readonly consumer: string;
  private readonly redis: Scripted;
  /** The one subscriber connection (wake messages), opened by the first onWork. */
  private subscriber: Redis | undefined;
  private readonly workListeners = new Set<() => void>();
  private readonly prefix: string;
  private readonly g: ReturnType<typeof globalKeys>;
  private readonly vt: number;
  private readonly claimEvery: number;
  private readonly outcomesMaxLen: number;
  private readonly ensured = new Set<string>();
  private readonly claimCursor = new Map<string, string>();
  /** Events its last visit here left waiting, per integration: a visit taking fewer skips the hold. */
  private readonly lastWaiting = new Map<string, number>();
  /** The hold this consumer left on an integration whose leases it still had: its last settle may drop it. */
  private readonly holds = new Map<string, string>();
  private readonly lastPrune = new Map<string, number>();
  private trips = 0;
  /** Delivered and skipped settles, coalesced per integration (settle-done script). */
  private readonly doneSettles = new Coalescer<DoneSettle, boolean>((integration, batch) => this.settleDone(integration, batch));
  private closed = false;
  /** Seals queued events at rest (SIGNAL_STORE_KEY); undefined: stored as JSON. */
  private readonly sealKey: Buffer | undefined;
  /** What a sealed message (stream entry, scheduled retry) is bound to: this keyspace's queues. */
  private readonly messageAad: string;

  private constructor(redis: Redis, opts: RedisQueueOptions) {
    this.redis = redis as Scripted;
    for (const [name, def] of Object.entries(SCRIPTS)) redis.defineCommand(name, def);
    this.prefix = opts.prefix ?? DEFAULT_KEY_PREFIX;
    const bad = keyPrefixProblem(this.prefix);
    if (bad) throw new TypeError(bad);
    this.vt = opts.visibilityTimeoutMs ?? 30_000;
    this.claimEvery = opts.claimIntervalMs ?? Math.min(5_000, Math.max(100, Math.floor(this.vt / 2)));
    this.g = globalKeys(this.prefix);
    this.outcomesMaxLen = opts.outcomesMaxLen ?? 100_000;
    this.consumer = opts.consumer ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.sealKey = sealKeyOf(opts);
    this.messageAad = `${this.prefix}queued-event`;
  }

  /** A message's text as stored (stream entry, scheduled retry): sealed when the queue has a key. */
  private sealMessage(text: string): string {
    return this.sealKey ? seal(this.sealKey, this.messageAad, text) : text;
  }

  /** A dead-letter line as stored: sealed when the queue has a key, bound to its dead-letter hash. */
  private sealDead(deadData: string, line: string): string {
    return this.sealKey ? seal(this.sealKey, deadData, line) : line;
  }

  /** A stored value's text: itself when plain, opened when sealed, undefined when it cannot be opened here. */
  private open(stored: string, aad: string): string | undefined {
    if (!isSealed(stored)) return stored;
    return this.sealKey ? unseal(this.sealKey, aad, stored) : undefined;
  }

  /** Connect (failing with a clear error when Redis cannot be reached) and get ready. */
  static async connect(opts: RedisQueueOptions): Promise<RedisQueue> {
    sealKeyOf(opts); // a malformed key is refused before connecting
    return new RedisQueue(await connectRedis(opts.url, opts), opts);
  }

  private pipe(): ScriptedPipeline {
    return this.redis.pipeline() as ScriptedPipeline;
  }

  get roundTrips(): number {
    return this.trips;
  }

  private k(id: string) {
    return keys(this.prefix, checkIntegrationId(id));
  }

  async ensure(integration: string, name?: string): Promise<void> {
    if (this.ensured.has(integration)) return;
    const k = this.k(integration);
    this.trips++;
    try {
      await this.redis.xgroup('CREATE', k.stream, GROUP, '0', 'MKSTREAM');
    } catch (e) {
      if (!String((e as Error).message).includes('BUSYGROUP')) throw e;
    }
    this.trips++;
    const p = this.redis.pipeline().sadd(this.g.integrations, integration);
    if (name !== undefined) p.hset(this.g.names, integration, name);
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
    this.ensured.add(integration);
  }

  enqueue(record: QueueRecord, events: readonly unknown[]): Promise<number> {
    return enqueueSpan(record.id, events.length, (carried) => this.enqueueWith(record, events, carried));
  }

  private async enqueueWith(record: QueueRecord, events: readonly unknown[], carried: Record<string, string> | undefined): Promise<number> {
    await this.ensure(record.id, record.name);
    const k = this.k(record.id);
    const now = Date.now();
    for (let i = 0; i < events.length; i += 500) {
      const chunk = events.slice(i, i + 500);
      const p = this.redis.pipeline();
      for (const event of chunk) {
        const m: QueuedEvent = { job_id: randomUUID(), integration: record.id, scope: record.scope, event, history: [], enqueued_at: now };
        if (carried) m.trace_context = carried;
        p.xadd(k.stream, '*', 'm', this.sealMessage(JSON.stringify(m)));
      }
      p.hincrby(k.stats, 'enqueued', chunk.length);
      // After the entries: a visitor that missed them sees its hold moved, so it does not drop the integration.
      (p as ScriptedPipeline).signalActiveDue(this.g.active, record.id, 0);
      p.publish(this.g.wake, record.id);
      this.trips++;
      const results = await p.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    }
    return events.length;
  }

  private toLease(entry: Entry, reclaimed: boolean): Lease | undefined {
    const [id, fields] = entry;
    if (!fields) return undefined; // deleted meanwhile (XAUTOCLAIM reports those separately)
    const i = fields.indexOf('m');
    const stored = i >= 0 && i % 2 === 0 ? fields[i + 1] ?? '' : '';
    const text = this.open(stored, this.messageAad);
    if (text === undefined) {
      // Sealed with another key (or this consumer has none): kept as it is, for the dead letter.
      return { id, message: { job_id: `unreadable-${id}`, integration: '', scope: '', event: undefined, history: [], enqueued_at: Date.now() }, unreadable: stored, sealed: true, reclaimed };
    }
    try {
      const m = JSON.parse(text) as QueuedEvent;
      if (typeof m !== 'object' || m === null || typeof m.job_id !== 'string' || !Array.isArray(m.history)) throw new Error('not a queued event');
      return { id, message: m, raw: text, reclaimed };
    } catch {
      return { id, message: { job_id: `unreadable-${id}`, integration: '', scope: '', event: undefined, history: [], enqueued_at: Date.now() }, unreadable: text, reclaimed };
    }
  }

  async ready(opts: { limit: number; offset?: number }): Promise<{ ids: string[]; nextInMs: number | undefined }> {
    this.trips++;
    const [ids, next, now] = await this.redis.signalActiveReady(this.g.active, opts.offset ?? 0, opts.limit);
    return { ids, nextInMs: next === '' ? undefined : Math.max(0, Number(next) - Number(now)) };
  }

  onWork(listener: () => void): () => void {
    this.workListeners.add(listener);
    if (!this.subscriber) {
      const sub = this.redis.duplicate();
      sub.on('error', () => undefined); // reported through the main connection's failing commands
      sub.on('message', () => {
        for (const l of this.workListeners) l();
      });
      // Re-subscribed by ioredis after a reconnect (autoResubscribe).
      sub.subscribe(this.g.wake).catch(() => undefined);
      this.subscriber = sub;
    }
    return () => this.workListeners.delete(listener);
  }

  async take(integration: string, max: number): Promise<Lease[]> {
    await this.ensure(integration);
    const k = this.k(integration);
    const takeArgs = [k.stream, k.delayed, this.consumer, Math.max(0, max), this.vt, this.claimCursor.get(integration) ?? '0-0', 1000] as const;
    this.trips++;
    // A busy integration (its last visit here left more waiting than this one takes) stays due: read it
    // without a hold, one script. Otherwise hold it first (only one worker gets a due integration's hold),
    // then read: work queued after the hold moves the score, and the drop below then keeps it.
    const busy = (this.lastWaiting.get(integration) ?? 0) > max;
    let hold = '';
    let taken: TakeResult;
    if (busy) taken = (await this.redis.signalQueueTake(...takeArgs)) as TakeResult;
    else {
      hold = await this.redis.signalActiveHold(this.g.active, integration, this.claimEvery, Math.floor(Math.random() * 1000));
      // Not due any more: another worker holds it (it is visiting it now), or it was found empty.
      if (hold === '') return [];
      this.trips++;
      taken = (await this.redis.signalQueueTake(...takeArgs)) as TakeResult;
    }
    const [claimed, cursor, fresh, waiting, pending, nextDelayed] = taken;
    this.claimCursor.set(integration, cursor);
    const leases: Lease[] = [];
    for (const e of claimed) {
      const l = this.toLease(e, true);
      if (l) leases.push(l);
    }
    for (const e of fresh) {
      const l = this.toLease(e, false);
      if (l) leases.push(l);
    }
    // Still due (more waiting, more to take over): keep it so. Without a hold it is due already.
    const more = waiting > 0 || cursor !== '0-0';
    if (more) this.lastWaiting.set(integration, waiting);
    else this.lastWaiting.delete(integration);
    this.holds.delete(integration);
    if (hold !== '') {
      // What the next visit is for: more waiting (due now), a retry (due then), leases (the hold: a take-over check).
      this.trips++;
      if (more) await this.redis.signalActiveDue(this.g.active, integration, 0);
      // Only a retry left: the next visit when it is due (however far), unless work came in meanwhile.
      else if (nextDelayed !== '' && pending === 0) await this.redis.signalActiveDrop(this.g.active, integration, hold, nextDelayed);
      else if (nextDelayed !== '' && Number(nextDelayed) < Number(hold)) await this.redis.signalActiveAt(this.g.active, integration, nextDelayed);
      else if (pending === 0 && nextDelayed === '') {
        await this.redis.signalActiveDrop(this.g.active, integration, hold);
        this.maybePrune(integration, k.stream);
      } else {
        // Only leases left: the hold stands (a take-over check later), unless the last settle finds it empty.
        this.trips--;
        if (leases.length) this.holds.set(integration, hold);
      }
    }
    // Found drained without a hold: it stays due, and the next visit (with a hold) settles its schedule.
    return leases;
  }

  /** Now and then, on an idle visit: forget consumers of dead workers. */
  private maybePrune(integration: string, stream: string): void {
    const now = Date.now();
    if (now - (this.lastPrune.get(integration) ?? 0) < 60_000) return;
    this.lastPrune.set(integration, now);
    this.pruneConsumers(stream).catch(() => undefined);
  }

  /**
   * Forget consumers of dead workers once their leases were taken over (no pending entries, silent for
   * 10 minutes; a live worker reads every second): the group's consumer list stays short.
   */
  private async pruneConsumers(stream: string): Promise<void> {
    this.trips++;
    const list = (await this.redis.xinfo('CONSUMERS', stream, GROUP)) as unknown[][];
    for (const flat of list) {
      const info: Record<string, unknown> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) info[String(flat[i])] = flat[i + 1];
      if (info.name !== this.consumer && Number(info.pending) === 0 && Number(info.idle) > 600_000) {
        this.trips++;
        await this.redis.xgroup('DELCONSUMER', stream, GROUP, String(info.name));
      }
    }
  }

  async renew(integration: string, ids: readonly string[]): Promise<string[]> {
    if (!ids.length) return [];
    this.trips++;
    return this.redis.signalQueueRenew(this.k(integration).stream, this.consumer, ...ids);
  }

  async settle(integration: string, lease: Lease, s: Settlement): Promise<boolean> {
    // The common case, delivered or skipped: coalesced with the other settles of this turn (settleDone).
    if (s.kind === 'done') return this.doneSettles.add(integration, { id: lease.id, status: s.status, outcome: s.outcome });
    const k = this.k(integration);
    // A dead letter of a message this consumer could not unseal holds it still sealed, beside metadata only: stored as it is.
    const payload = s.kind === 'retry' ? this.sealMessage(JSON.stringify(s.message)) : lease.sealed ? s.entry : this.sealDead(k.deadData, s.entry);
    this.trips++;
    if (s.kind === 'retry') {
      const delay = Math.max(0, Math.round(s.delay_ms));
      const [[err, r]] = (await this.pipe()
        .signalQueueSettle(k.stream, k.delayed, k.dead, k.deadData, k.stats, k.outcomes, lease.id, this.consumer, 'retry', s.outcome, payload, delay, '', this.outcomesMaxLen, '0')
        .signalActiveDue(this.g.active, integration, delay)
        .exec()) as unknown as [[Error | null, number]];
      if (err) throw err;
      return r === 1;
    }
    const hold = this.holds.get(integration);
    const r = await this.redis.signalQueueSettle(
      k.stream, k.delayed, k.dead, k.deadData, k.stats, k.outcomes,
      lease.id, this.consumer, 'dead', s.outcome, payload, 0, s.job_id, this.outcomesMaxLen, hold !== undefined ? '1' : '0',
    );
    if (r === 2) await this.dropIfStillHeld(integration, hold);
    return r >= 1;
  }

  /** One script call for the done settles of an integration made in one turn of the event loop. */
  private async settleDone(integration: string, batch: DoneSettle[]): Promise<boolean[]> {
    const k = this.k(integration);
    const hold = this.holds.get(integration);
    const ids = batch.map((b) => b.id).sort(compareStreamIds);
    const args: string[] = [this.consumer, String(this.outcomesMaxLen), hold !== undefined ? '1' : '0', ids[0]!, ids.at(-1)!];
    for (const b of batch) args.push(b.id, b.status, b.outcome);
    this.trips++;
    const r = await this.redis.signalQueueSettleDone(k.stream, k.delayed, k.stats, k.outcomes, ...args);
    if (r.at(-1) === 1) await this.dropIfStillHeld(integration, hold);
    return batch.map((_, i) => r[i] === 1);
  }

  /**
   * The last event is settled and nothing is left: drop the integration from `active` now instead of at the
   * hold's take-over check (dropped only if no work moved its score since the hold).
   */
  private async dropIfStillHeld(integration: string, hold: string | undefined): Promise<void> {
    if (hold === undefined || this.holds.get(integration) !== hold) return;
    this.holds.delete(integration);
    this.trips++;
    await this.redis.signalActiveDrop(this.g.active, integration, hold);
  }

  async release(integration: string, lease: Lease, message: QueuedEvent): Promise<boolean> {
    this.trips++;
    // A message that could not be read goes back exactly as it was (still sealed, or the producer's text).
    const payload = lease.unreadable !== undefined ? lease.unreadable : this.sealMessage(JSON.stringify(message));
    const [[err, r]] = (await this.pipe()
      .signalQueueRelease(this.k(integration).stream, lease.id, this.consumer, payload)
      .signalActiveDue(this.g.active, integration, 0)
      .publish(this.g.wake, integration)
      .exec()) as unknown as [[Error | null, number]];
    if (err) throw err;
    return r === 1;
  }

  async status(integration: string): Promise<QueueStatus> {
    return status(this.operator(integration));
  }

  async integrations(): Promise<string[]> {
    this.trips++;
    return (await this.redis.smembers(this.g.integrations)).sort();
  }

  async sweep(integrations: readonly string[]): Promise<number> {
    let marked = 0;
    for (let i = 0; i < integrations.length; i += 500) {
      const chunk = integrations.slice(i, i + 500);
      const p = this.redis.pipeline();
      for (const id of chunk) p.xlen(this.k(id).stream);
      this.trips++;
      const lens = (await p.exec()) ?? [];
      const due = chunk.filter((_, j) => Number(lens[j]?.[1] ?? 0) > 0);
      if (!due.length) continue;
      const q = this.pipe();
      for (const id of due) q.signalActiveDue(this.g.active, id, 0);
      this.trips++;
      await q.exec();
      marked += due.length;
    }
    return marked;
  }

  async purge(integration: string): Promise<number> {
    const n = await purge(this.operator(integration), integration, this.g);
    this.ensured.delete(integration);
    return n;
  }

  async label(names: ReadonlyMap<string, string>): Promise<void> {
    const all = [...names];
    for (let i = 0; i < all.length; i += 1000) {
      this.trips++;
      await this.redis.hset(this.g.names, Object.fromEntries(all.slice(i, i + 1000)));
    }
  }

  async ping(timeoutMs: number): Promise<void> {
    this.trips++;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.redis.ping(),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async lease(name: string, ttlMs: number): Promise<boolean> {
    this.trips++;
    return (await this.redis.signalLease(`${this.prefix}lease:${name}`, this.consumer, ttlMs)) === 1;
  }

  async names(): Promise<Record<string, string>> {
    this.trips++;
    return this.redis.hgetall(this.g.names);
  }

  async deadLetters(integration: string, opts: { limit?: number } = {}): Promise<string[]> {
    return deadLetters(this.operator(integration), opts);
  }

  async replay(record: QueueRecord, opts: { limit?: number; all?: boolean } = {}): Promise<ReplayResult> {
    return replay(this.operator(record.id), record, opts);
  }

  /** What the operator's functions (redis-operator.ts) use of this queue, for one integration. */
  private operator(integration: string): OperatorAccess {
    return {
      redis: this.redis,
      keys: this.k(integration),
      active: this.g.active,
      wake: this.g.wake,
      open: (stored, aad) => this.open(stored, aad),
      sealMessage: (text) => this.sealMessage(text),
      messageAad: this.messageAad,
      trip: () => void this.trips++,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriber?.disconnect();
    this.workListeners.clear();
    // QUIT waits for what is queued; a Redis that is away must not hold the process.
    await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
    this.redis.disconnect();
  }
}

/** The key queued events are sealed with: the option, else SIGNAL_STORE_KEY; a malformed one is refused (SignalError). */
function sealKeyOf(opts: RedisQueueOptions): Buffer | undefined {
  const text = opts.encryptionKey ?? process.env.SIGNAL_STORE_KEY;
  return text ? parseStoreKey(text) : undefined;
}

/** Connect a Redis Streams queue (see RedisQueueOptions). */
export function createRedisQueue(opts: RedisQueueOptions): Promise<RedisQueue> {
  return RedisQueue.connect(opts);
}
