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
 *
 * Every acknowledged entry is also deleted from the stream, so XLEN − pending = waiting. Every state change
 * that must not be half-done (record the outcome + acknowledge; due retry → queue; dead letter → queue) is
 * one Lua script, and settling checks that the caller still holds the lease: an event ends exactly once.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
// Types only: ioredis is loaded when a queue connects, so embedded use (deliver, npm start) never pays for it.
import type { Redis, RedisOptions } from 'ioredis';
import { SignalError } from '../errors.js';
import { displayRedisUrl } from '../policy/redis-url.js';
import { isSealed, parseStoreKey, seal, unseal } from '../store/seal.js';
import { GROUP, SCRIPTS, keys, type Scripted } from './redis-scripts.js';
import type { DeliveryQueue, Lease, QueuedEvent, QueueRecord, QueueStatus, Settlement } from './queue.js';

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
  /** How often due retries are moved back onto the queue. Default 500 ms. */
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

/** Default `commandTimeoutMs` of a queue that is not persistent. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;

export const DEFAULT_KEY_PREFIX = 'signal:';

/** A key prefix (a customer's keyspace) that cannot break hash tags or collide by accident; else the problem. */
export function keyPrefixProblem(prefix: string): string | undefined {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$/.test(prefix)) return `key prefix '${prefix.replace(/[^\x20-\x7e]/g, '?')}' must be 1-64 characters of letters, digits and . _ : / - (no braces: keys keep their {id} hash tag), starting with a letter or digit`;
  return undefined;
}

/** A record id as a key part: what the record schema allows (no braces, no spaces); else a TypeError. */
export function checkIntegrationId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id)) throw new TypeError(`integration id '${id.replace(/[^\x20-\x7e]/g, '?')}' is not a valid id (1-128 of letters, digits and . _ : -)`);
  return id;
}


type Entry = [id: string, fields: string[] | null];

/** ioredis's message for a command that got no answer within `commandTimeout`. */
const TIMED_OUT = 'Command timed out';

export class RedisQueue implements DeliveryQueue {
  readonly consumer: string;
  private readonly redis: Scripted;
  /** One connection per integration for the blocking XREADGROUP (a blocked connection can do nothing else). */
  private readonly blocking = new Map<string, Redis>();
  private readonly prefix: string;
  private readonly vt: number;
  private readonly claimEvery: number;
  private readonly promoteEvery: number;
  private readonly outcomesMaxLen: number;
  private readonly ensured = new Set<string>();
  private readonly lastClaim = new Map<string, number>();
  private readonly claimCursor = new Map<string, string>();
  private readonly lastPromote = new Map<string, number>();
  private readonly lastPrune = new Map<string, number>();
  private trips = 0;
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
    this.promoteEvery = opts.promoteIntervalMs ?? 500;
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
    const { Redis } = await import('ioredis');
    const options = RedisQueue.connectionOptions(opts);
    const redis = new Redis(opts.url, options);
    let lastError: Error | undefined;
    redis.on('error', (e: Error) => (lastError = e)); // reported through the failing commands, not as unhandled events
    // A Redis that accepts the connection but never answers (frozen, SIGSTOP) would hold connect() forever:
    // it gets the connect timeout plus the command timeout, once per connection try.
    const limit = options.commandTimeout !== undefined ? 3 * ((options.connectTimeout ?? 0) + options.commandTimeout) : undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await (limit === undefined
        ? redis.connect()
        : Promise.race([redis.connect(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(TIMED_OUT)), limit)))]));
    } catch (e) {
      redis.disconnect();
      const why = (lastError ?? (e as Error)).message;
      if (why === TIMED_OUT) throw new SignalError('queue.timeout', `Redis at ${displayRedisUrl(opts.url)} did not answer within ${Math.round(options.commandTimeout! / 1000)} s (frozen or overloaded?)`);
      throw new SignalError('queue.unreachable', `cannot reach Redis at ${displayRedisUrl(opts.url)}: ${why}`);
    } finally {
      clearTimeout(timer);
    }
    return new RedisQueue(redis, opts);
  }

  private static connectionOptions(opts: RedisQueueOptions): RedisOptions {
    const commandTimeout = opts.commandTimeoutMs ?? (opts.persistent ? undefined : DEFAULT_COMMAND_TIMEOUT_MS);
    return {
      lazyConnect: true,
      connectTimeout: 5_000,
      ...(commandTimeout !== undefined ? { commandTimeout } : {}),
      ...(opts.persistent
        ? { maxRetriesPerRequest: null, retryStrategy: (n: number) => Math.min(n * 200, 2_000) }
        : { maxRetriesPerRequest: 1, retryStrategy: (n: number) => (n > 2 ? null : 200) }),
    };
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
    const p = this.redis.pipeline().sadd(`${this.prefix}integrations`, integration);
    if (name !== undefined) p.hset(`${this.prefix}names`, integration, name);
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
    this.ensured.add(integration);
  }

  async enqueue(record: QueueRecord, events: readonly unknown[]): Promise<number> {
    await this.ensure(record.id, record.name);
    const k = this.k(record.id);
    const now = Date.now();
    for (let i = 0; i < events.length; i += 500) {
      const chunk = events.slice(i, i + 500);
      const p = this.redis.pipeline();
      for (const event of chunk) {
        const m: QueuedEvent = { job_id: randomUUID(), integration: record.id, scope: record.scope, event, history: [], enqueued_at: now };
        p.xadd(k.stream, '*', 'm', this.sealMessage(JSON.stringify(m)));
      }
      p.hincrby(k.stats, 'enqueued', chunk.length);
      this.trips++;
      const results = await p.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    }
    return events.length;
  }

  private blockingConnection(integration: string): Redis {
    let c = this.blocking.get(integration);
    if (!c) {
      c = this.redis.duplicate();
      c.on('error', () => undefined);
      this.blocking.set(integration, c);
    }
    return c;
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

  async take(integration: string, max: number, blockMs: number): Promise<Lease[]> {
    if (max <= 0) return [];
    await this.ensure(integration);
    const k = this.k(integration);
    const now = Date.now();
    if (now - (this.lastPromote.get(integration) ?? 0) >= this.promoteEvery) {
      this.lastPromote.set(integration, now);
      this.trips++;
      await this.redis.signalQueuePromote(k.stream, k.delayed, 1000);
    }
    if (now - (this.lastClaim.get(integration) ?? 0) >= this.claimEvery) {
      this.lastClaim.set(integration, now);
      this.trips++;
      const [next, entries] = (await this.redis.xautoclaim(k.stream, GROUP, this.consumer, this.vt, this.claimCursor.get(integration) ?? '0-0', 'COUNT', max)) as [string, Entry[], string[]?];
      this.claimCursor.set(integration, next);
      // More may be waiting past the cursor: look again soon rather than after a whole interval.
      if (next !== '0-0') this.lastClaim.set(integration, 0);
      const leases = entries.map((e) => this.toLease(e, true)).filter((l): l is Lease => l !== undefined);
      if (leases.length) return leases;
      if (now - (this.lastPrune.get(integration) ?? 0) >= 60_000) {
        this.lastPrune.set(integration, now);
        await this.pruneConsumers(k.stream);
      }
    }
    this.trips++;
    const res = (await this.blockingConnection(integration).xreadgroup('GROUP', GROUP, this.consumer, 'COUNT', max, 'BLOCK', blockMs, 'STREAMS', k.stream, '>')) as
      | [string, Entry[]][]
      | null;
    if (!res || !res[0]) return [];
    return res[0][1].map((e) => this.toLease(e, false)).filter((l): l is Lease => l !== undefined);
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
    const k = this.k(integration);
    // A dead letter of a message this consumer could not unseal holds it still sealed, beside metadata only: stored as it is.
    const payload = s.kind === 'retry' ? this.sealMessage(JSON.stringify(s.message)) : s.kind === 'dead' ? (lease.sealed ? s.entry : this.sealDead(k.deadData, s.entry)) : '';
    this.trips++;
    const r = await this.redis.signalQueueSettle(
      k.stream, k.delayed, k.dead, k.deadData, k.stats, k.outcomes,
      lease.id, this.consumer, s.kind, s.outcome, payload,
      s.kind === 'retry' ? Math.max(0, Math.round(s.delay_ms)) : 0,
      s.kind === 'dead' ? s.job_id : '',
      s.kind === 'done' ? s.status : '',
      this.outcomesMaxLen,
    );
    return r === 1;
  }

  async release(integration: string, lease: Lease, message: QueuedEvent): Promise<boolean> {
    this.trips++;
    // A message that could not be read goes back exactly as it was (still sealed, or the producer's text).
    const payload = lease.unreadable !== undefined ? lease.unreadable : this.sealMessage(JSON.stringify(message));
    return (await this.redis.signalQueueRelease(this.k(integration).stream, lease.id, this.consumer, payload)) === 1;
  }

  async status(integration: string): Promise<QueueStatus> {
    const k = this.k(integration);
    this.trips++;
    const [xlen, pending, delayed, dead, stats] = (await this.redis
      .pipeline()
      .xlen(k.stream)
      .xpending(k.stream, GROUP)
      .zcard(k.delayed)
      .zcard(k.dead)
      .hgetall(k.stats)
      .exec()) as [Error | null, unknown][];
    const n = (v: unknown) => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
    // No group yet (nothing enqueued): nothing in flight.
    const inFlight = pending?.[0] ? 0 : n((pending?.[1] as unknown[] | undefined)?.[0]);
    const s = (stats?.[1] ?? {}) as Record<string, string>;
    return {
      waiting: Math.max(0, n(xlen?.[1]) - inFlight),
      in_flight: inFlight,
      scheduled_retry: n(delayed?.[1]),
      delivered: n(s.delivered),
      failed: n(s.failed),
      dead_lettered: n(dead?.[1]),
      skipped: n(s.skipped),
      enqueued: n(s.enqueued),
      replayed: n(s.replayed),
    };
  }

  async integrations(): Promise<string[]> {
    this.trips++;
    return (await this.redis.smembers(`${this.prefix}integrations`)).sort();
  }

  async names(): Promise<Record<string, string>> {
    this.trips++;
    return this.redis.hgetall(`${this.prefix}names`);
  }

  async deadLetters(integration: string, opts: { limit?: number } = {}): Promise<string[]> {
    const k = this.k(integration);
    const out: string[] = [];
    const limit = opts.limit ?? Infinity;
    for (let start = 0; out.length < limit; start += 500) {
      this.trips++;
      const ids = await this.redis.zrange(k.dead, start, start + 499);
      if (!ids.length) break;
      this.trips++;
      const lines = await this.redis.hmget(k.deadData, ...ids);
      lines.forEach((l, j) => {
        if (l !== null && out.length < limit) out.push(this.open(l, k.deadData) ?? sealedDeadLetter(ids[j]!, l));
      });
      if (ids.length < 500) break;
    }
    return out;
  }

  async replay(record: QueueRecord, opts: { limit?: number } = {}): Promise<number> {
    const k = this.k(record.id);
    let moved = 0;
    let skip = 0;
    const limit = opts.limit ?? Infinity;
    while (moved < limit) {
      const want = Math.min(500, limit - moved);
      this.trips++;
      const ids = await this.redis.zrange(k.dead, skip, skip + want - 1);
      if (!ids.length) break;
      this.trips++;
      const lines = await this.redis.hmget(k.deadData, ...ids);
      const p = this.redis.pipeline();
      let batch = 0;
      ids.forEach((id, i) => {
        const stored = lines[i] ?? null;
        const line = stored === null ? null : this.open(stored, k.deadData) ?? null;
        const message = replayMessage(id, line, record, (t) => this.open(t, this.messageAad));
        if (!message) {
          skip++; // no event to send again (its line never parsed, or it is sealed with another key): stays for the operator
          return;
        }
        (p as unknown as { signalQueueReplay(...a: string[]): unknown }).signalQueueReplay(k.stream, k.dead, k.deadData, k.stats, id, this.sealMessage(JSON.stringify(message)));
        batch++;
      });
      if (batch) {
        this.trips++;
        const res = await p.exec();
        for (const [err, r] of res ?? []) {
          if (err) throw err;
          if (r === 1) moved++;
        }
      }
      if (ids.length < want) break;
    }
    return moved;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.blocking.values()) c.disconnect();
    // QUIT waits for what is queued; a Redis that is away must not hold the process.
    await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
    this.redis.disconnect();
  }
}

/**
 * The message a dead letter goes back as: the same job (the job_id the dead letter carries; `member`, its
 * key in the dead letters, may be `<job_id>#<n>`), fresh attempts, the duplicate flag kept.
 */
function replayMessage(member: string, line: string | null, record: QueueRecord, openMessage: (text: string) => string | undefined): QueuedEvent | undefined {
  if (line === null) return undefined;
  try {
    const entry = JSON.parse(line) as { dead_letter?: { possibly_duplicated?: boolean; replays?: number; job_id?: unknown }; event?: unknown; raw_line?: unknown };
    const dl = entry.dead_letter ?? {};
    let event = entry.event;
    let jobId = typeof dl.job_id === 'string' && dl.job_id ? dl.job_id : member;
    let pd = dl.possibly_duplicated === true;
    if ((typeof event !== 'object' || event === null) && typeof entry.raw_line === 'string' && isSealed(entry.raw_line)) {
      // A message a worker could not unseal, kept sealed: replayed with the key that sealed it, it goes back.
      const text = openMessage(entry.raw_line);
      const m = text === undefined ? undefined : (JSON.parse(text) as Partial<QueuedEvent>);
      if (m && typeof m.job_id === 'string') {
        event = m.event;
        jobId = m.job_id;
        pd ||= m.possibly_duplicated === true;
      }
    }
    if (typeof event !== 'object' || event === null) return undefined;
    return {
      job_id: jobId,
      integration: record.id,
      scope: record.scope,
      event,
      history: [],
      ...(pd ? { possibly_duplicated: true } : {}),
      enqueued_at: Date.now(),
      replays: (typeof dl.replays === 'number' ? dl.replays : 0) + 1,
    };
  } catch {
    return undefined;
  }
}

/** The key queued events are sealed with: the option, else SIGNAL_STORE_KEY; a malformed one is refused (SignalError). */
function sealKeyOf(opts: RedisQueueOptions): Buffer | undefined {
  const text = opts.encryptionKey ?? process.env.SIGNAL_STORE_KEY;
  return text ? parseStoreKey(text) : undefined;
}

/** What `deadLetters` shows for a dead letter sealed with another key: the fact, and the value still sealed (nothing lost). */
function sealedDeadLetter(member: string, stored: string): string {
  return JSON.stringify({
    dead_letter: {
      reason: 'sealed_unreadable',
      message: 'this dead letter is sealed with another SIGNAL_STORE_KEY (or none is set here): it cannot be shown; it stays in the dead letters',
      hint: 'run dead-letters (or replay) with the SIGNAL_STORE_KEY the workers had when it was dead-lettered',
      job_id: member.replace(/#\d+$/, ''),
    },
    sealed: stored,
  });
}

/** Connect a Redis Streams queue (see RedisQueueOptions). */
export function createRedisQueue(opts: RedisQueueOptions): Promise<RedisQueue> {
  return RedisQueue.connect(opts);
}
