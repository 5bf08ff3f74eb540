/**
 * The live registry of integration records, in the fleet's Redis: the Management API (or `records put`)
 * writes records there while workers run, and `worker --all-records` follows it — a notification on every
 * change, and a periodic reconciliation against the version of every record (a missed notification leaves
 * a worker stale for at most one reconcile interval).
 *
 * Keys (under the customer's prefix, beside the queues):
 *   <prefix>records             HASH id → the stored entry (JSON: id, name, vendor, enabled, updated_at,
 *                               version, and the record — sealed with SIGNAL_STORE_KEY when one is set)
 *   <prefix>records:versions    HASH id → version (a digest of the record): what reconciliation compares
 *   <prefix>records:changed     pub/sub channel: the id of a record put or removed
 *
 * Listing never returns the record itself (secrets live in its config): id, name, vendor, enabled,
 * updated_at and version only.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { SignalError } from '../errors.js';
import { parseStoreKey, seal, unseal } from '../store/seal.js';
import { checkIntegrationId, DEFAULT_KEY_PREFIX, keyPrefixProblem } from './redis-queue.js';
import { connectRedis } from './connect.js';

/** What a listing shows of a record: never its config. */
export interface RegistryEntry {
  id: string;
  name: string;
  vendor: string;
  enabled: boolean;
  /** ISO 8601, when it was last put. */
  updated_at: string;
  /** Digest of the record: changes whenever any of it does. */
  version: string;
}

interface StoredEntry extends RegistryEntry {
  /** The record as JSON, or sealed (`gcm1:...`) when the registry has a key. */
  record: string;
}

export interface RecordRegistryOptions {
  url: string;
  /** The customer's keyspace. Default `signal:`. */
  prefix?: string;
  /** 32 bytes as hex or base64: records are stored sealed. Default: env SIGNAL_STORE_KEY. */
  encryptionKey?: string;
  /** Keep retrying while Redis is away (a worker). Default false (a CLI command fails fast). */
  persistent?: boolean;
}

export interface RecordRegistry {
  /**
   * Store records under their ids (each must have a valid `id`, `name`, `vendor` and `enabled`; check them
   * against their spec first, e.g. with `engine.createIntegration`). Resolves with their entries.
   */
  put(records: readonly unknown[]): Promise<RegistryEntry[]>;
  list(): Promise<RegistryEntry[]>;
  /** The record and its entry, or undefined when there is none. */
  get(id: string): Promise<{ entry: RegistryEntry; record: unknown } | undefined>;
  /** Several at once (one round trip); missing ids are left out. */
  getMany(ids: readonly string[]): Promise<Map<string, { entry: RegistryEntry; record: unknown }>>;
  /** Remove a record; resolves false when there was none. Its queue is kept (events wait). */
  rm(id: string): Promise<boolean>;
  /** id → version of every record (what a follower reconciles against). */
  versions(): Promise<Map<string, string>>;
  /** Called with the id of every record put or removed anywhere; returns the remover. */
  onChange(listener: (id: string) => void): () => void;
  close(): Promise<void>;
}

/** The version of a record: a digest of its canonical JSON (key order does not matter). */
export function recordVersion(record: unknown): string {
  return createHash('sha256').update(canonical(record)).digest('hex').slice(0, 16);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

export async function createRecordRegistry(opts: RecordRegistryOptions): Promise<RecordRegistry> {
  const prefix = opts.prefix ?? DEFAULT_KEY_PREFIX;
  const bad = keyPrefixProblem(prefix);
  if (bad) throw new TypeError(bad);
  const keyText = opts.encryptionKey ?? process.env.SIGNAL_STORE_KEY;
  const sealKey = keyText ? parseStoreKey(keyText) : undefined;
  const redis = await connectRedis(opts.url, { persistent: opts.persistent ?? false });
  return new RedisRecordRegistry(redis, prefix, sealKey);
}

class RedisRecordRegistry implements RecordRegistry {
  private readonly keys: { records: string; versions: string; changed: string };
  private subscriber: Redis | undefined;
  private readonly listeners = new Set<(id: string) => void>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
    private readonly sealKey: Buffer | undefined,
  ) {
    this.keys = { records: `${prefix}records`, versions: `${prefix}records:versions`, changed: `${prefix}records:changed` };
  }

  /** The sealed value is bound to the record's key and id: copied under another id, it does not open. */
  private aad(id: string): string {
    return `${this.keys.records}:${id}`;
  }

  async put(records: readonly unknown[]): Promise<RegistryEntry[]> {
    const entries: StoredEntry[] = records.map((r, i) => {
      const rec = r as { id?: unknown; name?: unknown; vendor?: unknown; enabled?: unknown } | null;
      if (typeof rec?.id !== 'string') throw new TypeError(`record ${i + 1} has no id: the registry keys records by their stable id`);
      checkIntegrationId(rec.id);
      if (typeof rec.name !== 'string' || typeof rec.vendor !== 'string' || typeof rec.enabled !== 'boolean') throw new TypeError(`record '${rec.id}' needs name, vendor and enabled`);
      const text = JSON.stringify(r);
      return {
        id: rec.id,
        name: rec.name,
        vendor: rec.vendor,
        enabled: rec.enabled,
        updated_at: new Date().toISOString(),
        version: recordVersion(r),
        record: this.sealKey ? seal(this.sealKey, this.aad(rec.id), text) : text,
      };
    });
    const p = this.redis.pipeline();
    for (const e of entries) {
      p.hset(this.keys.records, e.id, JSON.stringify(e));
      p.hset(this.keys.versions, e.id, e.version);
    }
    // After the writes: a follower that hears of a change reads the new record.
    for (const e of entries) p.publish(this.keys.changed, e.id);
    const res = await p.exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
    return entries.map(({ record: _r, ...entry }) => entry);
  }

  private parse(id: string, text: string | null): { entry: RegistryEntry; record: unknown } | undefined {
    if (text === null) return undefined;
    const { record, ...entry } = JSON.parse(text) as StoredEntry;
    let json: string | undefined = record;
    if (record.startsWith('gcm1:')) {
      if (!this.sealKey) throw new SignalError('registry.sealed', `record '${id}' is stored sealed: set SIGNAL_STORE_KEY to the key it was put with`);
      json = unseal(this.sealKey, this.aad(id), record);
      if (json === undefined) throw new SignalError('registry.sealed', `record '${id}' does not open with this SIGNAL_STORE_KEY (put with another key, or altered)`);
    }
    return { entry, record: JSON.parse(json) };
  }

  async list(): Promise<RegistryEntry[]> {
    const all = await this.redis.hgetall(this.keys.records);
    return Object.values(all)
      .map((t) => {
        const { record: _r, ...entry } = JSON.parse(t) as StoredEntry;
        return entry;
      })
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async get(id: string): Promise<{ entry: RegistryEntry; record: unknown } | undefined> {
    return this.parse(id, await this.redis.hget(this.keys.records, id));
  }

  async getMany(ids: readonly string[]): Promise<Map<string, { entry: RegistryEntry; record: unknown }>> {
    const out = new Map<string, { entry: RegistryEntry; record: unknown }>();
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const texts = await this.redis.hmget(this.keys.records, ...chunk);
      chunk.forEach((id, j) => {
        const got = this.parse(id, texts[j] ?? null);
        if (got) out.set(id, got);
      });
    }
    return out;
  }

  async rm(id: string): Promise<boolean> {
    const res = await this.redis.pipeline().hdel(this.keys.records, id).hdel(this.keys.versions, id).publish(this.keys.changed, id).exec();
    const failed = res?.find(([err]) => err);
    if (failed) throw failed[0];
    return res?.[0]?.[1] === 1;
  }

  async versions(): Promise<Map<string, string>> {
    return new Map(Object.entries(await this.redis.hgetall(this.keys.versions)));
  }

  onChange(listener: (id: string) => void): () => void {
    this.listeners.add(listener);
    if (!this.subscriber) {
      const sub = this.redis.duplicate();
      sub.on('error', () => undefined); // a follower also reconciles: a missed message costs one interval
      sub.on('message', (_channel: string, id: string) => {
        for (const l of this.listeners) l(id);
      });
      sub.subscribe(this.keys.changed).catch(() => undefined);
      this.subscriber = sub;
    }
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.listeners.clear();
    await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
    this.redis.disconnect();
  }
}
