/**
 * Worker processes under trouble (issue 16 §4, items 5 and 6), against a real Redis and the emulator: a
 * drain while deliveries wait on a slow token hands them back at once (flagged) instead of leaving them
 * in flight, and a Redis freeze does not make a worker report leases lost that were not.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { startWorker, type QueueStatus } from '../engine/index.js';
import { leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';
import { runCli, startCli } from './helpers/cli-process.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { until, writeIn } from './helpers/fleet.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const file = (name: string, content: unknown): string => writeIn(dir, name, content);
let admin: Redis;

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-hostile-worker-'));
  admin = new Redis(redis.url);
});
beforeEach(async () => {
  await admin.flushall();
  emu.reset();
});
afterAll(async () => {
  process.kill(redis.pid, 'SIGCONT');
  admin?.disconnect();
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const events = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ ...leadSubmitted(), event_id: `${prefix}_${i}`, properties: { ...leadSubmitted().properties, email: `${prefix}${i}@example.com` } })).join('\n') + '\n';

async function status(recordFile: string): Promise<QueueStatus> {
  const r = await runCli(['status', '--redis', redis.url, '--integration', recordFile, '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.values(JSON.parse(r.out) as Record<string, QueueStatus>)[0]!;
}

async function enqueue(recordFile: string, text: string): Promise<void> {
  const r = await runCli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file(`e${Math.random()}.ndjson`, text)]);
  expect(r.code, r.err).toBe(0);
}

describe('drain while deliveries wait on a slow token', () => {
  it('SIGTERM with --drain-timeout 2: the deliveries waiting on the token are handed back flagged, nothing is left in flight', { timeout: 90_000 }, async () => {
    const record = { ...referenceRecord(), id: 'int_slow_token' };
    const recordFile = file('slow-token.json', record);
    await enqueue(recordFile, events('evt_st', 8));
    // The token endpoint answers after 30 s (longer than the whole drain).
    emu.setFaults({ slow: 1, slow_ms: 30_000, apply_to: ['token'] });
    const worker = startCli(['worker', '--redis', redis.url, '--integration', recordFile, '--endpoint', emu.url, '--concurrency', '8', '--drain-timeout', '2', '--visibility-timeout', '60']);
    try {
      await until('8 deliveries waiting on the token', 30_000, async () => ((await status(recordFile)).in_flight === 8 && emu.requests.some((r) => r.path.includes('token')) ? true : undefined));
      worker.proc.kill('SIGTERM');
      expect(await worker.exit, worker.err()).toBe(0);
      // Handed back, not counted as attempts, flagged (as every drain hand-back is); nothing in flight.
      expect(await status(recordFile)).toMatchObject({ waiting: 8, in_flight: 0, failed: 0, delivered: 0 });
      const queued = (await admin.xrange('signal:{int_slow_token}:stream', '-', '+')).map(([, f]) => JSON.parse(f[1]!) as Json);
      expect(queued).toHaveLength(8);
      for (const m of queued) expect(m).toMatchObject({ possibly_duplicated: true, history: [] });
      expect(worker.err()).toContain('drain timeout');
      expect(emu.events()).toHaveLength(0);
    } finally {
      worker.proc.kill('SIGKILL');
      emu.setFaults({});
    }
  });
});

describe('a Redis freeze', () => {
  it('leaves no "leases lost" warning when nothing was lost; every event is delivered once', { timeout: 90_000 }, async () => {
    const record = { ...referenceRecord(), id: 'int_freeze_renew' };
    const recordFile = file('freeze-renew.json', record);
    await enqueue(recordFile, events('evt_fr', 16));
    // Each answer takes 1.5 s; leases are renewed every second (a third of the 3 s visibility timeout).
    emu.setFaults({ slow: 1, slow_ms: 1_500, apply_to: ['events'] });
    const worker = startCli(['worker', '--redis', redis.url, '--integration', recordFile, '--endpoint', emu.url, '--concurrency', '8', '--visibility-timeout', '3']);
    try {
      await until('deliveries in flight', 30_000, async () => ((await status(recordFile)).in_flight === 8 ? true : undefined));
      // Freeze Redis for several renewal periods while the deliveries in flight finish (their settles wait).
      process.kill(redis.pid, 'SIGSTOP');
      try {
        await new Promise((r) => setTimeout(r, 4_000));
      } finally {
        process.kill(redis.pid, 'SIGCONT');
      }
      await until('all 16 delivered', 60_000, async () => ((await status(recordFile)).delivered === 16 ? true : undefined));
      worker.proc.kill('SIGTERM');
      expect(await worker.exit, worker.err()).toBe(0);
      expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, delivered: 16, failed: 0 });
      // Nothing was taken over or redone: each event reached the vendor once, and no loss was reported.
      const seen = emu.events().map((e) => e.ContactKey);
      expect(seen.sort()).toEqual(Array.from({ length: 16 }, (_, i) => `evt_fr${i}@example.com`).sort());
      expect(worker.err()).not.toMatch(/lease(s)? lost/);
    } finally {
      worker.proc.kill('SIGKILL');
      process.kill(redis.pid, 'SIGCONT');
      emu.setFaults({});
    }
  });

  it('still warns of a lease really taken over by another consumer', { timeout: 60_000 }, async () => {
    const record = { ...referenceRecord(), id: 'int_really_lost' };
    const recordFile = file('really-lost.json', record);
    await enqueue(recordFile, events('evt_rl', 1));
    emu.setFaults({ slow: 1, slow_ms: 3_000, apply_to: ['events'] });
    const warnings: string[] = [];
    const w = await startWorker({
      engineOptions: {},
      redis: redis.url,
      integrations: [record],
      endpoint: emu.url,
      visibilityTimeoutMs: 1_500,
      pollMs: 200,
      logger: { info: () => undefined, warn: (_o, msg) => warnings.push(String(msg)), error: (_o, msg) => warnings.push(String(msg)) },
    });
    try {
      await until('the delivery in flight', 20_000, async () => (w.inFlight() === 1 ? true : undefined));
      const pending = (await admin.xpending('signal:{int_really_lost}:stream', 'workers', '-', '+', 10)) as [string, ...unknown[]][];
      expect(pending).toHaveLength(1);
      await admin.xclaim('signal:{int_really_lost}:stream', 'workers', 'another-worker', 0, pending[0]![0]);
      await until('the loss to be reported', 20_000, async () => (warnings.some((m) => m.startsWith('leases lost')) ? true : undefined));
    } finally {
      await w.stop();
      emu.setFaults({});
    }
  });
});
