/**
 * What a hostile producer or payload does to the queue (issue 16 §4, items 3, 4 and 8), against a real
 * Redis, the emulator and the worker: an attempt that throws counts as an attempt and ends in the dead
 * letters, two messages with one job_id are both kept when dead-lettered, and with SIGNAL_STORE_KEY the
 * payloads are sealed wherever they rest.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { Engine, startWorker, type FleetOutcome, type QueueStatus } from '../engine/index.js';
import { leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
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

async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = await run(args, { stdout, stderr });
    return { code, out, err };
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

async function status(recordFile: string): Promise<QueueStatus> {
  const r = await cli(['status', '--redis', redis.url, '--integration', recordFile, '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.values(JSON.parse(r.out) as Record<string, QueueStatus>)[0]!;
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
async function workUntil(record: Json, recordFile: string, done: (s: QueueStatus) => boolean, engine?: Engine): Promise<{ outcomes: FleetOutcome[]; logs: string[] }> {
  const outcomes: FleetOutcome[] = [];
  const logs: string[] = [];
  const log = (level: string) => (obj: object, msg?: string) => logs.push(`${level} ${msg} ${JSON.stringify(obj)}`);
  const w = await startWorker({
    ...(engine ? { engine } : { engineOptions: {} }),
    redis: redis.url,
    integrations: [record],
    endpoint: emu.url,
    visibilityTimeoutMs: 1_000,
    retryBackoffMs: 50,
    blockMs: 200,
    onOutcome: (o) => outcomes.push(o),
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
  });
  try {
    await until('the queue to settle', 30_000, async () => (done(await status(recordFile)) ? true : undefined));
  } finally {
    await w.stop();
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

    const rp = await cli(['replay', '--redis', redis.url, '--integration', recordFile, '--json']);
    expect(rp.code, rp.err).toBe(0);
    expect(JSON.parse(rp.out)).toMatchObject({ replayed: 2, dead_lettered: 0 });
    const queued = (await admin.xrange(`signal:{${record.id}}:stream`, '-', '+')).map(([, f]) => JSON.parse(f[1]!) as Json);
    expect(queued.map((m) => [m.job_id, m.event.event_id])).toEqual([
      ['job-same', 'evt_same_1'],
      ['job-same', 'evt_same_2'],
    ]);
  });
});
