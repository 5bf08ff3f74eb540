/**
 * Multi-tenant safety of the fleet, against a real Redis and the emulator: queues are keyed by the
 * record's stable id (never its display name), a queued event is only delivered with the record it was
 * enqueued for (same id and credential scope), fleet commands refuse records without an id, and every key
 * lives under the customer's key prefix.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { Engine, startWorker, type FleetOutcome, type QueueStatus } from '../engine/index.js';
import { referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { cli, leadEvents, until, writeIn } from './helpers/fleet.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-tenancy-'));
});
beforeEach(async () => {
  const c = new Redis(redis.url);
  await c.flushall();
  c.disconnect();
  emu.reset();
});
afterAll(async () => {
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string, content: unknown): string => writeIn(dir, name, content);
const events = leadEvents;

async function status(recordFile: string, prefix = 'signal:'): Promise<QueueStatus & { name: string | null }> {
  const r = await cli(['status', '--redis', redis.url, '--key-prefix', prefix, '--integration', recordFile, '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.values(JSON.parse(r.out) as Record<string, QueueStatus & { name: string | null }>)[0]!;
}

/** Tenant A's record, and a record of another tenant (other source, other account, other client). */
const tenantA = () => ({ ...referenceRecord(), id: 'int_tenant_a', name: 'Marketing Cloud', retry: { max_attempts: 1, queue: { max_attempts: 2, backoff_ms: 50 } } });
const otherTenant = (over: Record<string, unknown>) => {
  const r = referenceRecord();
  return { ...r, source_id: 'src_other_tenant', name: 'Marketing Cloud', config: { ...r.config, tenant_subdomain: 'mc-othertenant9', client_id: 'otherclientid', client_secret: 'other-secret' }, ...over };
};

async function withWorker<T>(records: unknown[], body: (outcomes: FleetOutcome[]) => Promise<T>, keyPrefix?: string): Promise<T> {
  const engine = await Engine.load();
  const outcomes: FleetOutcome[] = [];
  const queue = keyPrefix ? await (await import('../engine/index.js')).createRedisQueue({ url: redis.url, prefix: keyPrefix, visibilityTimeoutMs: 2_000 }) : undefined;
  const w = await startWorker({ engine, ...(queue ? { queue } : { redis: redis.url }), integrations: records, endpoint: emu.url, visibilityTimeoutMs: 2_000, pollMs: 100, onOutcome: (o) => outcomes.push(o) });
  try {
    return await body(outcomes);
  } finally {
    await w.stop();
    await queue?.close();
    engine.close();
  }
}

describe('integrations are known by id: the same-name cross-tenant repro delivers nothing with the wrong credentials', () => {
  it("another tenant's record named like A's gets its own queue; A's worker never touches it", async () => {
    const a = file('a.json', tenantA());
    const d = file('d.json', otherTenant({ id: 'int_tenant_d' }));
    const enqD = await cli(['enqueue', '--redis', redis.url, '--integration', d, '--events', file('d.ndjson', events('evt_d', 3))]);
    expect(enqD.code, enqD.err).toBe(0);
    expect(enqD.out).toContain("enqueued 3 events for int_tenant_d ('Marketing Cloud')");
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', a, '--events', file('a.ndjson', events('evt_a', 1))])).code).toBe(0);

    await withWorker([tenantA()], async () => {
      await until("A's event delivered", 15_000, async () => ((await status(a)).delivered === 1 ? true : undefined));
    });
    // D's events wait on D's own queue; the vendor saw only A's one event.
    expect(await status(d)).toMatchObject({ waiting: 3, delivered: 0, name: 'Marketing Cloud' });
    expect(emu.events().map((e) => e.ContactKey)).toEqual(['evt_a0@example.com']);
    const all = JSON.parse((await cli(['status', '--redis', redis.url, '--json'])).out) as Record<string, unknown>;
    expect(Object.keys(all).sort()).toEqual(['int_tenant_a', 'int_tenant_d']);
  });

  it("a record carrying A's id but another tenant's source and credentials: its events are refused by A's worker, never sent", async () => {
    const forged = file('forged.json', otherTenant({ id: 'int_tenant_a' }));
    const enq = await cli(['enqueue', '--redis', redis.url, '--integration', forged, '--events', file('forged.ndjson', events('evt_f', 2))]);
    expect(enq.code, enq.err).toBe(0);
    const a = file('a2.json', tenantA());
    const outcomes = await withWorker([tenantA()], async (o) => {
      await until('both dead-lettered', 15_000, async () => ((await status(a)).dead_lettered === 2 ? true : undefined));
      return o;
    });
    // Nothing reached the vendor: no event, and no token was requested for them.
    expect(emu.events()).toEqual([]);
    expect(emu.tokenRequests()).toEqual([]);
    expect(outcomes.map((o) => [o.reason, o.disposition, o.attempts])).toEqual([
      ['record_mismatch', 'retry_scheduled', 0],
      ['record_mismatch', 'retry_scheduled', 0],
      ['record_mismatch', 'dead_lettered', 0],
      ['record_mismatch', 'dead_lettered', 0],
    ]);
    expect(outcomes[0]!.message).toMatch(/reaches another account/);
    const dl = (await cli(['dead-letters', '--redis', redis.url, '--integration', a])).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(dl).toHaveLength(2);
    expect(dl[0]).toMatchObject({ dead_letter: { reason: 'record_mismatch', integration_id: 'int_tenant_a', hint: expect.stringMatching(/nothing was sent/) } });
  });

  it('renaming a record keeps its queue, dead letters and counts', async () => {
    const a = file('a3.json', tenantA());
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', a, '--events', file('r.ndjson', events('evt_r', 2))])).code).toBe(0);
    const renamed = { ...tenantA(), name: 'Welcome journey (renamed)' };
    const rf = file('renamed.json', renamed);
    await withWorker([renamed], async () => {
      await until('both delivered', 15_000, async () => ((await status(rf)).delivered === 2 ? true : undefined));
    });
    expect(await status(a)).toMatchObject({ delivered: 2, enqueued: 2, name: 'Welcome journey (renamed)' });
    expect(emu.events()).toHaveLength(2);
  });
});

describe('fleet commands need the record id; embedded commands do not', () => {
  it('enqueue, worker, status, dead-letters and replay refuse a record without id (exit 2, saying what to add)', async () => {
    const { id: _id, ...noId } = tenantA();
    const f = file('no-id.json', noId);
    const ev = file('n.ndjson', events('evt_n', 1));
    for (const args of [
      ['enqueue', '--integration', f, '--events', ev],
      ['worker', '--integration', f],
      ['status', '--integration', f],
      ['dead-letters', '--integration', f],
      ['replay', '--integration', f],
    ]) {
      const r = await cli([...args, '--redis', redis.url]);
      expect(r.code, `${args[0]}: ${r.err}`).toBe(2);
      expect(r.err).toContain("has no id: fleet commands key queues, dead letters and counts by the record's stable id");
      expect(r.err).toContain('add "id"');
    }
    const c = new Redis(redis.url);
    expect(await c.dbsize()).toBe(0); // nothing was written
    c.disconnect();
    // deliver and preview keep working without one.
    const del = await cli(['deliver', '--integration', f, '--events', ev, '--endpoint', emu.url]);
    expect(del.code, del.err).toBe(0);
    expect((await cli(['preview', '--integration', f, '--event', file('one.json', events('evt_p', 1).trim())])).code).toBe(0);
  });

  it('a malformed id is a record error', async () => {
    const r = await cli(['enqueue', '--redis', redis.url, '--integration', file('bad-id.json', { ...tenantA(), id: 'a}b{c' }), '--events', file('b.ndjson', events('evt_b', 1))]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/id: must match pattern/);
  });
});

describe('tenant keyspaces: --key-prefix', () => {
  it('two customers sharing a Redis with the same record id see only their own queues, tokens and counts', async () => {
    const a = file('kp.json', tenantA());
    expect((await cli(['enqueue', '--redis', redis.url, '--key-prefix', 'custA:', '--integration', a, '--events', file('k1.ndjson', events('evt_k1', 2))])).code).toBe(0);
    expect((await cli(['enqueue', '--redis', redis.url, '--key-prefix', 'custB:', '--integration', a, '--events', file('k2.ndjson', events('evt_k2', 5))])).code).toBe(0);
    expect(await status(a, 'custA:')).toMatchObject({ waiting: 2, enqueued: 2 });
    expect(await status(a, 'custB:')).toMatchObject({ waiting: 5, enqueued: 5 });
    expect(JSON.parse((await cli(['status', '--redis', redis.url, '--json'])).out)).toEqual({});

    await withWorker([tenantA()], async () => {
      await until("custA's events delivered", 15_000, async () => ((await status(a, 'custA:')).delivered === 2 ? true : undefined));
    }, 'custA:');
    expect(await status(a, 'custB:')).toMatchObject({ waiting: 5, delivered: 0 });
    const c = new Redis(redis.url);
    const keys = await c.keys('*');
    c.disconnect();
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) expect(k, k).toMatch(/^cust[AB]:/);
    // The integration's keys keep the {id} hash tag (one cluster slot).
    expect(keys).toContain('custA:{int_tenant_a}:stream');

    const bad = await cli(['status', '--redis', redis.url, '--key-prefix', 'x{y}']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/no braces/);
  });
});
