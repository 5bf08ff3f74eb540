/**
 * The live registry of records, with a real redis-server and real `worker --all-records` processes: a
 * record put while the worker runs is delivered within 5 s; a changed record applies to the next event (a
 * rotated secret: a new token with the new secret); a disabled or removed record takes no new events and
 * keeps its queue; a missed notification is caught by reconciliation; records are sealed at rest with
 * SIGNAL_STORE_KEY and never listed with a secret.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { recordVersion, type QueueStatus } from '../engine/index.js';
import { referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { cli, leadEvents, spawnWorker as spawnWorkerIn, until, writeIn } from './helpers/fleet.js';

const STORE_KEY = 'a'.repeat(64);

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  // The tenant's package answers to its first secret and to the rotated one.
  emu = await startMarketingCloudEmulator({
    clients: [
      { tenant: 'mc-abc123xyz', client_id: 'abc123clientid', client_secret: 'shh-secret-value' },
      { tenant: 'mc-abc123xyz', client_id: 'abc123clientid', client_secret: 'rotated-secret-value' },
    ],
  });
  dir = mkdtempSync(join(tmpdir(), 'signal-registry-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string, content: unknown): string => writeIn(dir, name, content);
const events = (prefix: string, n: number): string => file(`${prefix}.ndjson`, leadEvents(prefix, n));
const spawnWorker = (args: string[]) => spawnWorkerIn(args, children);

const record = (id: string, over: Record<string, unknown> = {}) => ({ ...referenceRecord(), id, name: `Journey ${id}`, ...over });

async function status(id: string, prefix: string): Promise<QueueStatus> {
  const r = await cli(['status', '--redis', redis.url, '--key-prefix', prefix, '--json']);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as Record<string, QueueStatus>)[id] ?? ({ delivered: 0, waiting: 0 } as QueueStatus);
}

describe('records put | list | rm', () => {
  it("checks records as deliver does, lists them without secrets, seals them at rest with SIGNAL_STORE_KEY", async () => {
    const prefix = 'reg1:';
    const bad = await cli(['records', 'put', '--redis', redis.url, '--key-prefix', prefix, file('bad.json', record('int_bad', { config: { tenant_subdomain: 'x' } }))]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('config.client_id: is required');
    const noId = await cli(['records', 'put', '--redis', redis.url, '--key-prefix', prefix, file('noid.json', { ...referenceRecord(), id: undefined })]);
    expect(noId.code).toBe(2);
    expect(noId.err).toContain('has no id');

    const put = await cli(['records', 'put', '--redis', redis.url, '--key-prefix', prefix, file('r1.json', record('int_r1')), file('r2.json', record('int_r2', { enabled: false }))], { SIGNAL_STORE_KEY: STORE_KEY });
    expect(put.code, put.err).toBe(0);
    expect(put.out).toBe('int_r1\nint_r2\n');
    const raw = new Redis(redis.url);
    const stored = await raw.hget(`${prefix}records`, 'int_r1');
    raw.disconnect();
    expect(stored).toContain('"name":"Journey int_r1"');
    expect(stored).not.toContain('shh-secret-value');
    expect(stored).not.toContain('abc123clientid');

    const list = await cli(['records', 'list', '--redis', redis.url, '--key-prefix', prefix, '--json']);
    expect(list.code, list.err).toBe(0);
    const entries = JSON.parse(list.out) as Record<string, unknown>[];
    expect(entries.map((e) => [e.id, e.name, e.vendor, e.enabled])).toEqual([
      ['int_r1', 'Journey int_r1', 'salesforce_marketing_cloud', true],
      ['int_r2', 'Journey int_r2', 'salesforce_marketing_cloud', false],
    ]);
    expect(list.out).not.toContain('secret');
    const text = await cli(['records', 'list', '--redis', redis.url, '--key-prefix', prefix]);
    expect(text.out).toMatch(/^id\s+name\s+vendor\s+enabled\s+updated_at\nint_r1\s+Journey int_r1\s+salesforce_marketing_cloud\s+true/);

    const rm = await cli(['records', 'rm', '--redis', redis.url, '--key-prefix', prefix, 'int_r2', 'int_none']);
    expect(rm.code).toBe(1);
    expect(rm.out).toContain('removed int_r2');
    expect(rm.err).toContain("no record 'int_none'");
    expect((JSON.parse((await cli(['records', 'list', '--redis', redis.url, '--key-prefix', prefix, '--json'])).out) as unknown[]).length).toBe(1);
  });
});

describe('worker --all-records follows the registry while it runs', () => {
  it('new, changed, disabled, removed and silently written records, with a real worker process', { timeout: 120_000 }, async () => {
    const prefix = 'reg2:';
    const r = (args: string[]) => ['--redis', redis.url, '--key-prefix', prefix, ...args];
    // A liveness probe: an integration that is always served, so "not delivered" means "not taken".
    expect((await cli(['records', 'put', ...r([file('probe.json', record('int_probe'))])])).code).toBe(0);
    const w = spawnWorker(r(['--all-records', '--reconcile-interval', '0.5', '--endpoint', emu.url, '--concurrency', '4', '--log-level', 'info']));
    await w.ready;
    let probes = 0;
    const probe = async (): Promise<void> => {
      const n = ++probes;
      expect((await cli(['enqueue', ...r(['--integration', file('probe.json', record('int_probe')), '--events', events(`evt_probe${n}`, 1)])])).code).toBe(0);
      await until(`probe ${n}`, 10_000, async () => ((await status('int_probe', prefix)).delivered === n ? true : undefined));
    };

    // A record put while the worker runs: its events (queued before it was put) are delivered within 5 s.
    const aFile = file('a.json', record('int_a'));
    expect((await cli(['enqueue', ...r(['--integration', aFile, '--events', events('evt_a1', 3)])])).code).toBe(0);
    const putAt = Date.now();
    expect((await cli(['records', 'put', ...r([aFile])])).code).toBe(0);
    await until('the new record delivered', 5_000, async () => ((await status('int_a', prefix)).delivered === 3 ? true : undefined));
    expect(Date.now() - putAt).toBeLessThan(5_000);

    // A changed record (rotated secret): the next event gets a new token, requested with the new secret.
    const tokensBefore = emu.tokenRequests().length;
    expect((await cli(['records', 'put', ...r([file('a.json', record('int_a', { config: { ...referenceRecord().config, client_secret: 'rotated-secret-value' } }))])])).code).toBe(0);
    await new Promise((res) => setTimeout(res, 300)); // the change notification
    expect((await cli(['enqueue', ...r(['--integration', aFile, '--events', events('evt_a2', 2)])])).code).toBe(0);
    await until('events after the change', 10_000, async () => ((await status('int_a', prefix)).delivered === 5 ? true : undefined));
    const newTokens = emu.tokenRequests().slice(tokensBefore);
    expect(newTokens.length).toBeGreaterThan(0);
    expect((newTokens.at(-1)!.json as Record<string, string>).client_secret).toBe('rotated-secret-value');

    // Disabled: no new events taken, the queue keeps them; enabled again: delivered.
    expect((await cli(['records', 'put', ...r([file('a-off.json', record('int_a', { enabled: false }))])])).code).toBe(0);
    await new Promise((res) => setTimeout(res, 300));
    expect((await cli(['enqueue', ...r(['--integration', aFile, '--events', events('evt_a3', 2)])])).code).toBe(0);
    await probe();
    expect(await status('int_a', prefix)).toMatchObject({ delivered: 5, waiting: 2 });
    expect((await cli(['records', 'put', ...r([aFile])])).code).toBe(0);
    await until('re-enabled record delivered', 5_000, async () => ((await status('int_a', prefix)).delivered === 7 ? true : undefined));

    // Removed: no new events taken; its queue is kept.
    expect((await cli(['records', 'rm', ...r(['int_a'])])).code).toBe(0);
    await new Promise((res) => setTimeout(res, 300));
    expect((await cli(['enqueue', ...r(['--integration', aFile, '--events', events('evt_a4', 2)])])).code).toBe(0);
    await probe();
    expect(await status('int_a', prefix)).toMatchObject({ delivered: 7, waiting: 2 });

    // Written without a notification (a lost message): reconciliation picks it up.
    const raw = new Redis(redis.url);
    const rec = record('int_a');
    const entry = { id: 'int_a', name: rec.name, vendor: 'salesforce_marketing_cloud', enabled: true, updated_at: new Date().toISOString(), version: recordVersion(rec), record: JSON.stringify(rec) };
    await raw.hset(`${prefix}records`, 'int_a', JSON.stringify(entry));
    await raw.hset(`${prefix}records:versions`, 'int_a', entry.version);
    raw.disconnect();
    await until('reconciled record delivered', 5_000, async () => ((await status('int_a', prefix)).delivered === 9 ? true : undefined));

    const logs = w.stderr();
    expect(logs).toContain('integration added');
    expect(logs).toContain('integration record changed');
    expect(logs).toContain('integration stopped');
    expect(logs).not.toContain('rotated-secret-value');
    expect(logs).not.toContain('shh-secret-value');
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);

    // Removed with --purge: the record and its queue are gone for good (events, counts, keys).
    expect((await cli(['enqueue', ...r(['--integration', aFile, '--events', events('evt_a5', 2)])])).code).toBe(0);
    const purged = await cli(['records', 'rm', '--purge', '--json', ...r(['int_a'])]);
    expect(purged.code, purged.err).toBe(0);
    expect(JSON.parse(purged.out)).toEqual({ removed: ['int_a'], missing: [], purged: { int_a: 2 } });
    expect(Object.keys(JSON.parse((await cli(['status', '--json', ...r([])])).out) as object)).not.toContain('int_a');
    const keys = new Redis(redis.url);
    expect(await keys.keys(`${prefix}{int_a}:*`)).toEqual([]);
    keys.disconnect();
  });

  it('worker refuses to start without --all-records or --integration (exit 2)', async () => {
    const r = await cli(['worker', '--redis', redis.url]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('give --all-records');
  });
});
