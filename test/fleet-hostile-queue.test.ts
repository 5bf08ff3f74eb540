/**
 * What a hostile producer or payload does to the queue (issue 16 §4, items 3, 4 and 8), against a real
 * Redis, the emulator and the worker: an attempt that throws counts as an attempt and ends in the dead
 * letters, two messages with one job_id are both kept when dead-lettered, and with SIGNAL_STORE_KEY the
 * payloads are sealed wherever they rest.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, Engine, startWorker, type FleetOutcome, type QueueStatus } from '../engine/index.js';
import { leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { cli, until, writeIn } from './helpers/fleet.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const file = (name: string, content: unknown): string => writeIn(dir, name, content);
let admin: Redis;

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-hostile-queue-'));
  admin = new Redis(redis.url);
});
beforeEach(async () => {
  await admin.flushall();
  emu.reset();
});
afterAll(async () => {
  admin?.disconnect();
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function status(recordFile: string): Promise<QueueStatus> {
  const r = await cli(['status', '--redis', redis.url, '--integration', recordFile, '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.values(JSON.parse(r.out) as Record<string, QueueStatus>)[0]!;
}

const lines = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Json);

/** A queued message as a producer other than `enqueue` would XADD it, for `record`. */
async function queuedText(record: Json, event: unknown, jobId: string, eventText?: string): Promise<string> {
  const engine = await Engine.load();
  try {
    const scope = engine.createIntegration(record).credentialScope;
    const head = JSON.stringify({ job_id: jobId, integration: record.id, scope, history: [], enqueued_at: Date.now() });
    return `${head.slice(0, -1)},"event":${eventText ?? JSON.stringify(event)}}`;
  } finally {
    engine.close();
  }
}

async function xadd(record: Json, text: string): Promise<void> {
  const stream = `signal:{${record.id}}:stream`;
  await admin.xgroup('CREATE', stream, 'workers', '0', 'MKSTREAM').catch(() => undefined);
  await admin.xadd(stream, '*', 'm', text);
}

/** Run a worker in-process until `done` holds for the record's queue; its outcomes and warnings. */
async function workUntil(
  record: Json,
  recordFile: string,
  done: (s: QueueStatus) => boolean,
  engine?: Engine,
  opts: { key?: string; retryBackoffMs?: number } = {},
): Promise<{ outcomes: FleetOutcome[]; logs: string[] }> {
  const outcomes: FleetOutcome[] = [];
  const logs: string[] = [];
  const log = (level: string) => (obj: object, msg?: string) => logs.push(`${level} ${msg} ${JSON.stringify(obj)}`);
  // The queue seals with `key` (SIGNAL_STORE_KEY for the CLI); without one, nothing is sealed.
  const queue = await createRedisQueue({ url: redis.url, visibilityTimeoutMs: 1_000, persistent: true, ...(opts.key ? { encryptionKey: opts.key } : {}) });
  const w = await startWorker({
    ...(engine ? { engine } : { engineOptions: {} }),
    queue,
    integrations: [record],
    endpoint: emu.url,
    retryBackoffMs: opts.retryBackoffMs ?? 50,
    pollMs: 200,
    onOutcome: (o) => outcomes.push(o),
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
  });
  try {
    await until('the queue to settle', 30_000, async () => (done(await status(recordFile)) ? true : undefined));
  } finally {
    await w.stop();
    await queue.close();
  }
  return { outcomes, logs };
}

describe('an attempt that throws unexpectedly counts as an attempt', () => {
  it('an event nested 100,000 deep ("Maximum call stack size exceeded") is dead-lettered, kept verbatim, not retried forever', async () => {
    const record = { ...referenceRecord(), id: 'int_deep', retry: { max_attempts: 1, queue: { max_attempts: 3 } } };
    const recordFile = file('deep.json', record);
    const deep = '['.repeat(100_000) + '1' + ']'.repeat(100_000);
    const eventText = JSON.stringify({ ...leadSubmitted(), event_id: 'evt_deep' }).replace('"value":0', `"value":${deep}`);
    await xadd(record, await queuedText(record, undefined, 'job-deep', eventText));

    const { outcomes } = await workUntil(record, recordFile, (s) => s.dead_lettered === 1);
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, failed: 1, dead_lettered: 1 });
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 'failed', reason: 'internal_error', disposition: 'dead_lettered', attempt: 1, job_id: 'job-deep' });
    expect(outcomes[0]!.message).toContain('Maximum call stack size exceeded');

    // The dead letter keeps the queued message as it was, for the operator to fix.
    const dl = await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile]);
    expect(dl.code, dl.err).toBe(0);
    const [letter] = lines(dl.out);
    expect(letter!.dead_letter).toMatchObject({ reason: 'internal_error', attempts: 1, job_id: 'job-deep', retryable: false });
    expect(letter!.raw_line).toContain(deep);
  });

  it('a delivery that throws (an onOutcome hook) is retried on the queue schedule, then dead-lettered with its event', async () => {
    const record = { ...referenceRecord(), id: 'int_throws', retry: { queue: { max_attempts: 2 } } };
    const recordFile = file('throws.json', record);
    const enq = await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('throws.ndjson', JSON.stringify({ ...leadSubmitted(), event_id: 'evt_throws' }) + '\n')]);
    expect(enq.code, enq.err).toBe(0);
    const engine = await Engine.load({
      onOutcome: () => {
        throw new Error('hook exploded');
      },
    });
    try {
      const { outcomes } = await workUntil(record, recordFile, (s) => s.dead_lettered === 1, engine);
      expect(outcomes.map((o) => [o.attempt, o.reason, o.disposition])).toEqual([
        [1, 'internal_error', 'retry_scheduled'],
        [2, 'internal_error', 'dead_lettered'],
      ]);
      expect(outcomes[0]!.message).toContain('hook exploded');
      // It threw after the request may have gone out: later attempts are flagged.
      expect(outcomes.every((o) => o.possibly_duplicated)).toBe(true);
    } finally {
      engine.close();
    }
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, failed: 2, dead_lettered: 1 });
    const [letter] = lines((await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile])).out);
    expect(letter).toMatchObject({ dead_letter: { reason: 'internal_error', attempts: 2, possibly_duplicated: true }, event: { event_id: 'evt_throws' } });
  });
});

describe('dead letters with one job_id', () => {
  it('two messages with the same job_id are both kept, listed and replayed with that job_id', async () => {
    const record = { ...referenceRecord(), id: 'int_same_job' };
    const recordFile = file('same-job.json', record);
    // No ContactKey: a permanent failure (check_failed), dead-lettered at the first attempt.
    const bad = (id: string) => ({ ...leadSubmitted(), event_id: id, properties: { lead_type: 'x' }, user_id: undefined });
    await xadd(record, await queuedText(record, bad('evt_same_1'), 'job-same'));
    await xadd(record, await queuedText(record, bad('evt_same_2'), 'job-same'));

    await workUntil(record, recordFile, (s) => s.failed === 2);
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, failed: 2, dead_lettered: 2 });
    const dl = await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile]);
    expect(dl.code, dl.err).toBe(0);
    const letters = lines(dl.out);
    expect(letters.map((l) => [l.dead_letter.job_id, l.event.event_id])).toEqual([
      ['job-same', 'evt_same_1'],
      ['job-same', 'evt_same_2'],
    ]);

    // Both failed a check (not retryable): --all puts them back.
    const rp = await cli(['replay', '--redis', redis.url, '--integration', recordFile, '--json', '--all']);
    expect(rp.code, rp.err).toBe(0);
    expect(JSON.parse(rp.out)).toMatchObject({ replayed: 2, dead_lettered: 0 });
    const queued = (await admin.xrange(`signal:{${record.id}}:stream`, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as Json);
    expect(queued.map((m) => [m.job_id, m.event.event_id])).toEqual([
      ['job-same', 'evt_same_1'],
      ['job-same', 'evt_same_2'],
    ]);
  });
});

describe('SIGNAL_STORE_KEY seals queued events at rest', () => {
  it('stream entries, scheduled retries and dead letters are sealed; dead-letters opens them; a wrong key loses nothing', { timeout: 90_000 }, async () => {
    const K1 = randomBytes(32).toString('hex');
    const K2 = randomBytes(32).toString('hex');
    const record = { ...referenceRecord(), id: 'int_sealed', retry: { max_attempts: 1, queue: { max_attempts: 2 } } };
    const recordFile = file('sealed.json', record);
    const PHONE = '+447700900123'; // in every event's properties
    const ev = (id: string, email: string | undefined) => JSON.stringify({ ...leadSubmitted(), event_id: id, properties: { ...leadSubmitted().properties, email } });
    const withKey = (key: string | undefined) => ({ SIGNAL_STORE_KEY: key });
    const stream = 'signal:{int_sealed}:stream';
    const everything = async () =>
      [
        ...(await admin.xrange(stream, '-', '+')).map(([, f]) => f[1]!),
        ...(await admin.zrange('signal:{int_sealed}:delayed', 0, -1)),
        ...(await admin.hvals('signal:{int_sealed}:dead:data')),
      ].join('\n');

    // Enqueued with the key: every stream entry is sealed.
    let r = await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('sealed.ndjson', [ev('evt_sl_bad', undefined), ev('evt_sl_retry', 'retry@example.com')].join('\n') + '\n')], withKey(K1));
    expect(r.code, r.err).toBe(0);
    const entries = (await admin.xrange(stream, '-', '+')).map(([, f]) => f[1]!);
    expect(entries).toHaveLength(2);
    for (const e of entries) expect(e).toMatch(/^gcm1:/);
    expect(await everything()).not.toMatch(/retry@example\.com|evt_sl_|\+447700900123/);

    // A worker with the key: one dead letter (no ContactKey) and one scheduled retry (the vendor fails), both sealed.
    emu.setFaults({ server_error: 1, apply_to: ['events'] });
    await workUntil(record, recordFile, (s) => s.dead_lettered === 1 && s.scheduled_retry === 1, undefined, { key: K1, retryBackoffMs: 600_000 });
    emu.setFaults({});
    expect(await admin.zcard('signal:{int_sealed}:delayed')).toBe(1);
    expect(await admin.hlen('signal:{int_sealed}:dead:data')).toBe(1);
    for (const v of [...(await admin.zrange('signal:{int_sealed}:delayed', 0, -1)), ...(await admin.hvals('signal:{int_sealed}:dead:data'))]) expect(v).toMatch(/^gcm1:/);
    expect(await everything()).not.toContain(PHONE);

    // dead-letters opens them for the operator with the key; without it, or with another, it says so (exit 1) and shows them still sealed.
    r = await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile], withKey(K1));
    expect(r.code, r.err).toBe(0);
    expect(lines(r.out)).toMatchObject([{ dead_letter: { reason: 'check_failed', job_id: expect.any(String) }, event: { event_id: 'evt_sl_bad', properties: { phone: PHONE } } }]);
    for (const key of [undefined, K2]) {
      r = await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile], withKey(key));
      expect(r.code).toBe(1);
      expect(r.err).toContain('1 of them is sealed with another SIGNAL_STORE_KEY (or none is set here)');
      const [shown] = lines(r.out);
      expect(shown).toMatchObject({ dead_letter: { reason: 'sealed_unreadable' }, sealed: expect.stringMatching(/^gcm1:/) });
      expect(r.out).not.toContain(PHONE);
    }

    // A worker with another key cannot read a queued event: nothing is sent, it is dead-lettered still sealed, and the worker goes on.
    r = await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('sealed2.ndjson', ev('evt_sl_wait', 'wait@example.com') + '\n')], withKey(K1));
    expect(r.code, r.err).toBe(0);
    const { outcomes } = await workUntil(record, recordFile, (s) => s.dead_lettered === 2, undefined, { key: K2 });
    expect(outcomes).toMatchObject([{ reason: 'sealed_unreadable', disposition: 'dead_lettered' }]);
    expect(outcomes[0]!.message).toContain('sealed with a SIGNAL_STORE_KEY this worker does not have');
    expect(emu.events()).toHaveLength(0);
    expect(await everything()).not.toMatch(/wait@example\.com|\+447700900123/);

    // Replayed with the key that sealed it, the unreadable one goes back by default (its failure was the
    // worker's key); the failed check only with --all. Both go back sealed, and a worker with the key
    // delivers the one that can be.
    r = await cli(['replay', '--redis', redis.url, '--integration', recordFile, '--json'], withKey(K1));
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ replayed: 1, skipped_not_retryable: 1, dead_lettered: 1 });
    r = await cli(['replay', '--redis', redis.url, '--integration', recordFile, '--json', '--all'], withKey(K1));
    expect(JSON.parse(r.out)).toMatchObject({ replayed: 1, skipped_not_retryable: 0, dead_lettered: 0 });
    for (const e of (await admin.xrange(stream, '-', '+')).map(([, f]) => f[1]!)) expect(e).toMatch(/^gcm1:/);
    await workUntil(record, recordFile, (s) => s.delivered === 1 && s.dead_lettered === 1 && s.waiting === 0, undefined, { key: K1 });
    expect(emu.events().map((e) => e.ContactKey)).toEqual(['wait@example.com']);
  });
});
