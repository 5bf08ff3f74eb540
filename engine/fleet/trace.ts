/**
 * The fleet's trace store (`worker --trace`): every queue attempt's trace (run/trace.ts, redacted) kept in
 * Redis per integration, so `trace --event-id` shows one event's attempts across workers and retries.
 *
 * Keys (under the keyspace prefix, in the integration's `{id}` hash tag):
 *   <prefix>{<id>}:trace:<event>   LIST of that event's attempts, oldest first (at most 50), TTL
 *   <prefix>{<id>}:traces          ZSET event → when last traced: the bound. Past `maxEvents` the oldest
 *                                   events' lists are deleted; entries older than the TTL are dropped.
 * `<event>` is the event id when it is short and plain (letters, digits, . _ : @ -), else `h:` + its SHA-256.
 * Events without an id are not stored (nothing could look them up).
 *
 * With a store key (SIGNAL_STORE_KEY) every list entry is sealed (AES-256-GCM, engine/store/seal.ts, the
 * list's key as associated data); readers need the same key.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { SignalError } from '../errors.js';
import { parseStoreKey, seal, unseal } from '../store/seal.js';
import type { EventTrace, TraceSink } from '../run/trace.js';
import { connectRedis } from './connect.js';
import { checkIntegrationId, DEFAULT_KEY_PREFIX, keyPrefixProblem } from './redis-queue.js';
import type { FleetOutcome } from './worker.js';

export const DEFAULT_TRACE_TTL_S = 86_400;
export const DEFAULT_TRACE_MAX_EVENTS = 10_000;
const MAX_ATTEMPTS_PER_EVENT = 50;
/** Traces recorded but not yet settled (per worker): a bound, in case an attempt is handed back instead. */
const MAX_PENDING = 10_000;

/** One queue attempt's trace as stored: where the event went next, and which worker made the attempt. */
export interface StoredTrace {
  integration_id: string;
  integration: string;
  vendor: string;
  event_id: string;
  event?: string;
  job_id: string;
  attempt: number;
  max_attempts: number;
  disposition: FleetOutcome['disposition'];
  next_attempt_in_ms?: number;
  worker: string;
  trace: EventTrace;
}

/** What the worker calls (StartWorkerOptions.trace): a sink per attempt, then the attempt's settled outcome. */
export interface FleetTracer {
  begin(integration: string, jobId: string, attempt: number): TraceSink;
  settled(outcome: FleetOutcome): void;
}

export interface TraceStoreOptions {
  url: string;
  prefix?: string;
  /** Seconds a trace is kept. Default 86,400 (one day). */
  ttlSeconds?: number;
  /** Events traced per integration, at most (the oldest go first). Default 10,000. */
  maxEvents?: number;
  /** 32 bytes as hex or base64. Default: env SIGNAL_STORE_KEY. */
  encryptionKey?: string;
  /** Writing a trace failed (Redis away): the delivery is not affected. */
  onError?: (e: Error) => void;
}

const RECORD = `
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[7]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[4]) - tonumber(ARGV[2]) * 1000)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[6] .. old[i]) end
end
return 1
`;

/** The key part for an event id. */
export function traceEventKey(eventId: string): string {
  return /^[A-Za-z0-9._:@-]{1,128}$/.test(eventId) ? eventId : `h:${createHash('sha256').update(eventId).digest('base64url')}`;
}

export class TraceStore implements FleetTracer {
  private readonly pending = new Map<string, EventTrace>();
  private readonly worker = `${hostname()}:${process.pid}`;
  private constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly ttl: number,
    private readonly maxEvents: number,
    private readonly sealKey: Buffer | undefined,
    private readonly onError: (e: Error) => void,
  ) {
    redis.defineCommand('signalTraceRecord', { numberOfKeys: 2, lua: RECORD });
  }

  static async connect(opts: TraceStoreOptions): Promise<TraceStore> {
    const prefix = opts.prefix ?? DEFAULT_KEY_PREFIX;
    const bad = keyPrefixProblem(prefix);
    if (bad) throw new TypeError(bad);
    const keyText = opts.encryptionKey ?? process.env.SIGNAL_STORE_KEY;
    const sealKey = keyText ? parseStoreKey(keyText) : undefined;
    const redis = await connectRedis(opts.url);
    return new TraceStore(redis, prefix, Math.max(1, Math.round(opts.ttlSeconds ?? DEFAULT_TRACE_TTL_S)), Math.max(1, opts.maxEvents ?? DEFAULT_TRACE_MAX_EVENTS), sealKey, opts.onError ?? (() => undefined));
  }

  private listKey(integration: string, eventKey: string): string {
    return `${this.prefix}{${checkIntegrationId(integration)}}:trace:${eventKey}`;
  }

  begin(integration: string, jobId: string, attempt: number): TraceSink {
    return (trace) => {
      if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(`${integration}\u0000${jobId}\u0000${attempt}`, trace);
    };
  }

  settled(o: FleetOutcome): void {
    const id = o.integration_id;
    if (id === undefined) return;
    const k = `${id}\u0000${o.job_id}\u0000${o.attempt}`;
    const trace = this.pending.get(k);
    if (!trace) return;
    this.pending.delete(k);
    if (o.event_id === null) return;
    const entry: StoredTrace = {
      integration_id: id,
      integration: o.integration,
      vendor: o.vendor,
      event_id: o.event_id,
      ...(o.event !== undefined ? { event: o.event } : {}),
      job_id: o.job_id,
      attempt: o.attempt,
      max_attempts: o.max_attempts,
      disposition: o.disposition,
      ...(o.next_attempt_in_ms !== undefined ? { next_attempt_in_ms: o.next_attempt_in_ms } : {}),
      worker: this.worker,
      trace,
    };
    this.record(entry).catch((e: unknown) => this.onError(e as Error));
  }

  /** Store one attempt's trace. */
  async record(entry: StoredTrace): Promise<void> {
    const ek = traceEventKey(entry.event_id);
    const list = this.listKey(entry.integration_id, ek);
    const text = JSON.stringify(entry);
    const value = this.sealKey ? seal(this.sealKey, list, text) : text;
    const base = `${this.prefix}{${entry.integration_id}}:`;
    await (this.redis as unknown as { signalTraceRecord(...a: (string | number)[]): Promise<number> }).signalTraceRecord(
      list, `${base}traces`, value, this.ttl, this.maxEvents, Date.now(), ek, `${base}trace:`, MAX_ATTEMPTS_PER_EVENT,
    );
  }

  /** Every stored attempt of one event, in one integration or in every integration of the keyspace, oldest first. */
  async find(eventId: string, integrations?: readonly string[]): Promise<StoredTrace[]> {
    const ids = integrations?.length ? [...integrations] : (await this.redis.smembers(`${this.prefix}integrations`)).sort();
    const ek = traceEventKey(eventId);
    const out: StoredTrace[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const p = this.redis.pipeline();
      for (const id of chunk) p.lrange(this.listKey(id, ek), 0, -1);
      const res = (await p.exec()) ?? [];
      res.forEach(([err, values], j) => {
        if (err) throw err;
        const list = this.listKey(chunk[j]!, ek);
        for (const v of values as string[]) {
          const text = v.startsWith('gcm1:') ? this.open(list, v) : v;
          try {
            const e = JSON.parse(text) as StoredTrace;
            if (e.event_id === eventId) out.push(e);
          } catch {
            /* not a trace entry: skipped */
          }
        }
      });
    }
    return out.sort((a, b) => a.trace.at.localeCompare(b.trace.at) || a.attempt - b.attempt);
  }

  private open(list: string, sealed: string): string {
    if (!this.sealKey) throw new SignalError('trace.sealed', 'traces are stored sealed: set SIGNAL_STORE_KEY to the key the workers use');
    const text = unseal(this.sealKey, list, sealed);
    if (text === undefined) throw new SignalError('trace.sealed', 'a trace does not open with this SIGNAL_STORE_KEY (another key, or tampered)');
    return text;
  }

  async close(): Promise<void> {
    await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
    this.redis.disconnect();
  }
}

export function createTraceStore(opts: TraceStoreOptions): Promise<TraceStore> {
  return TraceStore.connect(opts);
}
