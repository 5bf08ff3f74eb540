/**
 * The fleet's commands against a real Redis and the emulator: enqueue → worker → status → dead-letters →
 * replay; durable retries until the attempts run out; SIGTERM drains (finish, or hand back) and exits 0
 * with nothing lost; the metrics endpoint, scraped over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { Engine, parseEventLine, startWorker, type FleetOutcome, type QueueStatus } from '../engine/index.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { cli, until } from './helpers/fleet.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-fleet-cli-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function event(id: string, email: string | undefined): string {
  const e = leadSubmitted();
  e.event_id = id;
  e.properties = { ...e.properties, email };
  return JSON.stringify(e);
}

async function status(recordFile: string): Promise<QueueStatus> {
  const r = await cli(['status', '--redis', redis.url, '--integration', recordFile, '--json']);
  expect(r.code, r.err).toBe(0);
  return Object.values(JSON.parse(r.out) as Record<string, QueueStatus>)[0]!;
}

/** Run the worker in-process (library API) until `done` says the queue is where the test wants it. */
async function drainWith(record: unknown, recordFile: string, done: (s: QueueStatus) => boolean): Promise<FleetOutcome[]> {
  const engine = await Engine.load();
  const outcomes: FleetOutcome[] = [];
  const w = await startWorker({ engine, redis: redis.url, integrations: [record], endpoint: emu.url, visibilityTimeoutMs: 2_000, pollMs: 200, onOutcome: (o) => outcomes.push(o) });
  try {
    await until('the queue to settle', 30_000, async () => (done(await status(recordFile)) ? true : undefined));
  } finally {
    await w.stop();
    engine.close();
  }
  return outcomes;
}

describe('enqueue, worker, status, dead-letters, replay', () => {
  it('round-trips events through the queue, retries durably, dead-letters with history, replays', async () => {
    const record = { ...referenceRecord(), id: 'int_round_trip', name: 'Round trip', retry: { max_attempts: 1, queue: { max_attempts: 2, backoff_ms: 50 } } };
    const recordFile = file('round-trip.json', JSON.stringify(record));
    const events = file(
      'round-trip.ndjson',
      [event('evt_rt_1', 'a@example.com'), event('evt_rt_2', 'b@example.com'), '', event('evt_rt_3', undefined), '{"event":"x"}', event('evt_rt_4', 'c@example.com')].join('\n') + '\n',
    );

    // Bad lines are refused with deliver's own reasons.
    const enq = await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', events]);
    expect(enq.code).toBe(1);
    expect(enq.out).toContain("enqueued 4 events for int_round_trip ('Round trip'); 1 line refused");
    const dry = await cli(['deliver', '--integration', recordFile, '--events', events, '--endpoint', emu.url, '--json']);
    const deliverReason = dry.out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { line: number; message: string }).find((o) => o.line === 5)!.message;
    expect(enq.err).toContain(deliverReason);
    emu.reset();

    // --redis may come from SIGNAL_REDIS_URL.
    const viaEnv = await cli(['status', '--integration', recordFile, '--json'], { SIGNAL_REDIS_URL: redis.url });
    expect(viaEnv.code, viaEnv.err).toBe(0);
    expect(JSON.parse(viaEnv.out)).toEqual({ int_round_trip: expect.objectContaining({ name: 'Round trip', waiting: 4, in_flight: 0, delivered: 0 }) });

    let outcomes = await drainWith(record, recordFile, (s) => s.delivered === 3 && s.dead_lettered === 1);
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, delivered: 3, failed: 1, dead_lettered: 1 });
    expect(outcomes.map((o) => o.disposition).sort()).toEqual(['dead_lettered', 'delivered', 'delivered', 'delivered']);
    expect(emu.events().map((e) => e.ContactKey).sort()).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);

    // A retryable failure: rescheduled durably, then dead-lettered when the attempts run out.
    emu.setFaults({ server_error: 1, apply_to: ['events'] });
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('e5.ndjson', event('evt_rt_5', 'd@example.com') + '\n')])).code).toBe(0);
    outcomes = await drainWith(record, recordFile, (s) => s.dead_lettered === 2);
    expect(outcomes.map((o) => [o.attempt, o.disposition, o.http_status])).toEqual([
      [1, 'retry_scheduled', 500],
      [2, 'dead_lettered', 500],
    ]);
    emu.setFaults({});

    const dl = await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile]);
    expect(dl.code, dl.err).toBe(0);
    const letters = dl.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(letters).toHaveLength(2);
    const [check, exhausted] = letters;
    expect(check).toMatchObject({
      dead_letter: { reason: 'check_failed', attempts: 1, http_status: null, integration: 'Round trip', integration_id: 'int_round_trip', event_id: 'evt_rt_3', retryable: false, history: [{ attempt: 1, reason: 'check_failed' }] },
      event: { event_id: 'evt_rt_3' },
    });
    expect(check.dead_letter.hint).toMatch(/ContactKey/);
    expect(exhausted).toMatchObject({
      dead_letter: { reason: 'http_error', attempts: 2, http_status: 500, retryable: true, history: [{ attempt: 1, http_status: 500 }, { attempt: 2, http_status: 500 }] },
      event: { event_id: 'evt_rt_5' },
    });
    // A dead letter is an input `deliver` and `enqueue` accept back.
    for (const l of dl.out.trim().split('\n')) expect(parseEventLine(Buffer.from(l), { unwrapDeadLetter: true }).ok).toBe(true);

    // By default only the retryable one goes back: the failed check would fail again at once.
    const rp = await cli(['replay', '--redis', redis.url, '--integration', recordFile]);
    expect(rp.code, rp.err).toBe(0);
    expect(rp.out.trim().split('\n')).toEqual([
      'replayed 1 dead letter onto the queue of int_round_trip',
      'skipped 1 not retryable (the engine classed the failure permanent: sending again fails the same way); fix the cause, then replay --all to include it',
    ]);
    expect(await status(recordFile)).toMatchObject({ waiting: 1, dead_lettered: 1, replayed: 1 });
    const all = await cli(['replay', '--redis', redis.url, '--integration', recordFile, '--all', '--json']);
    expect(JSON.parse(all.out)).toEqual({ integration: 'int_round_trip', replayed: 1, skipped_not_retryable: 0, dead_lettered: 0 });
    expect(await status(recordFile)).toMatchObject({ waiting: 2, dead_lettered: 0, replayed: 2 });

    // The vendor is back: the replayed event is delivered; the one without a ContactKey is dead again, marked
    // replayed, its history whole: the attempt before the replay, then attempt 1 after it.
    outcomes = await drainWith(record, recordFile, (s) => s.delivered === 4 && s.dead_lettered === 1);
    expect(outcomes.find((o) => o.event_id === 'evt_rt_5')).toMatchObject({ attempt: 1, disposition: 'delivered' });
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, delivered: 4, dead_lettered: 1 });
    const again = (await cli(['dead-letters', '--redis', redis.url, '--integration', recordFile])).out.trim().split('\n');
    expect(again).toHaveLength(1);
    const dead = JSON.parse(again[0]!);
    expect(dead).toMatchObject({ dead_letter: { event_id: 'evt_rt_3', replays: 1, attempts: 2 } });
    expect(dead.dead_letter.history.map((h: { attempt: number; replay?: number; reason: string }) => [h.attempt, h.replay ?? 0, h.reason])).toEqual([
      [1, 0, 'check_failed'],
      [1, 1, 'check_failed'],
    ]);
  });

  it('refuses a missing or malformed --redis and an unreachable Redis with clear errors', async () => {
    const recordFile = file('plain.json', JSON.stringify(referenceRecord()));
    const missing = await cli(['status', '--integration', recordFile], { SIGNAL_REDIS_URL: '' });
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/--redis/);
    const bad = await cli(['status', '--redis', 'http://127.0.0.1:1', '--json']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('must be a redis:// or rediss:// URL');
    const down = await cli(['status', '--redis', 'redis://:hunter2@127.0.0.1:1', '--json']);
    expect(down.code).toBe(2); // "cannot reach Redis" is exit 2 for every fleet command
    expect(down.err).toContain('cannot reach Redis at redis://:***@127.0.0.1:1');
    expect(down.err).not.toContain('hunter2');
  });
});

function spawnWorker(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string; stdout: () => string; metricsUrl: Promise<string> } {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  let out = '';
  let found: (url: string) => void;
  const metricsUrl = new Promise<string>((r) => (found = r));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    const m = /"metrics":"([^"]+)"/.exec(err);
    if (m) found(m[1]!);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, stderr: () => err, stdout: () => out, metricsUrl };
}

function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe('worker process: metrics, SIGTERM drain', () => {
  it('serves Prometheus metrics, drains on SIGTERM with exit 0, hands back what it cannot finish, loses nothing', { timeout: 90_000 }, async () => {
    const record = { ...referenceRecord(), id: 'int_drain', name: 'Drain' };
    const recordFile = file('drain.json', JSON.stringify(record));
    const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => event(`evt_dr_${from + i}`, `dr${from + i}@example.com`)).join('\n') + '\n';
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('dr1.ndjson', batch(0, 10))])).code).toBe(0);
    const base = ['--redis', redis.url, '--integration', recordFile, '--endpoint', emu.url, '--concurrency', '4', '--visibility-timeout', '2'];

    // Metrics, scraped over HTTP once the first events are through.
    const w1 = spawnWorker([...base, '--metrics-port', '0', '--json', '--drain-timeout', '20']);
    const url = await w1.metricsUrl;
    await until('10 delivered', 30_000, async () => ((await status(recordFile)).delivered === 10 ? true : undefined));
    // The worker counts an outcome right after Redis recorded it: scrape until it has.
    const text = await until('the metrics to count 10', 10_000, async () => {
      const t = await (await fetch(url)).text();
      return metricValue(t, 'signal_outcomes_total', { integration: 'int_drain', status: 'delivered', disposition: 'delivered' }) === 10 ? t : undefined;
    });
    expect(metricValue(text, 'signal_outcomes_total', { integration: 'int_drain', status: 'delivered', disposition: 'delivered' })).toBe(10);
    expect(metricValue(text, 'signal_queue_depth', { integration: 'int_drain', state: 'waiting' })).toBe(0);
    expect(metricValue(text, 'signal_dead_letter_depth', { integration: 'int_drain' })).toBe(0);
    expect(metricValue(text, 'signal_request_duration_seconds_count', { integration: 'int_drain', stage: 'send' })).toBe(10);
    expect(metricValue(text, 'signal_token_requests_total')).toBe(1);
    expect(metricValue(text, 'signal_rate_limit_waits_total')).toBe(0);
    expect(metricValue(text, 'signal_queue_round_trips_total')).toBeGreaterThan(0);
    // Metrics are labelled by the record's id; its name is a label of the info series only.
    expect(metricValue(text, 'signal_integration_info', { integration: 'int_drain', name: 'Drain' })).toBe(1);
    expect(text).not.toMatch(/signal_outcomes_total\{[^}]*integration="Drain"/);
    expect((await fetch(url.replace('/metrics', '/other'))).status).toBe(404);
    // Logs are JSON lines, and hold no secret.
    const logs = w1.stderr().trim().split('\n').map((l) => JSON.parse(l) as { msg: string });
    expect(logs.map((l) => l.msg)).toContain('worker started');
    expect(w1.stderr()).not.toContain(referenceRecord().config.client_secret);

    // SIGTERM while deliveries are in flight (each answer takes 1.5 s): they finish, the worker exits 0.
    emu.setFaults({ slow: 1, slow_ms: 1_500, apply_to: ['events'] });
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('dr2.ndjson', batch(10, 10))])).code).toBe(0);
    await until('deliveries in flight', 20_000, async () => ((await status(recordFile)).in_flight > 0 ? true : undefined));
    w1.child.kill('SIGTERM');
    expect(await w1.exited, w1.stderr()).toBe(0);
    let s = await status(recordFile);
    expect(s.in_flight).toBe(0);
    expect(s.delivered).toBeGreaterThan(10);
    expect(s.delivered + s.waiting).toBe(20);
    expect(w1.stderr()).toContain('draining');
    // One JSON outcome per line on stdout for every event this worker settled.
    expect(w1.stdout().trim().split('\n').map((l) => JSON.parse(l).status)).toEqual(Array(s.delivered).fill('delivered'));

    // A drain timeout shorter than the deliveries: they are handed back (not lost, not counted as attempts), flagged.
    emu.setFaults({ slow: 1, slow_ms: 4_000, apply_to: ['events'] });
    const w2 = spawnWorker([...base, '--drain-timeout', '0.3']);
    await until('deliveries in flight', 20_000, async () => ((await status(recordFile)).in_flight > 0 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // the requests are out
    w2.child.kill('SIGTERM');
    expect(await w2.exited, w2.stderr()).toBe(0);
    s = await status(recordFile);
    expect(s).toMatchObject({ in_flight: 0, failed: 0 });
    expect(s.delivered + s.waiting).toBe(20);
    const r = new Redis(redis.url);
    const entries = await r.xrange('signal:{int_drain}:stream', '-', '+');
    r.disconnect();
    const handedBack = entries.map(([, f]) => JSON.parse(f[1]!) as { possibly_duplicated?: boolean; history: unknown[]; event: { event_id: string } }).filter((m) => m.possibly_duplicated);
    expect(handedBack.length).toBeGreaterThan(0);
    for (const m of handedBack) expect(m.history).toEqual([]);

    // Another worker finishes the job; the handed-back ones (the vendor recorded them before the slow answer) stay flagged.
    emu.setFaults({});
    const w3 = spawnWorker([...base, '--json']);
    await until('all 20 delivered', 30_000, async () => ((await status(recordFile)).delivered === 20 ? true : undefined));
    w3.child.kill('SIGTERM');
    expect(await w3.exited).toBe(0);
    expect(await status(recordFile)).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, delivered: 20, dead_lettered: 0 });
    const flagged = new Set(
      w3
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as FleetOutcome)
        .filter((o) => o.possibly_duplicated)
        .map((o) => o.event_id),
    );
    for (const m of handedBack) expect(flagged.has(m.event.event_id)).toBe(true);
    const seen = new Map<string, number>();
    for (const e of emu.events()) seen.set(e.ContactKey, (seen.get(e.ContactKey) ?? 0) + 1);
    for (let i = 0; i < 20; i++) {
      const n = seen.get(`dr${i}@example.com`) ?? 0;
      expect(n).toBeGreaterThanOrEqual(1);
      if (n > 1) expect(flagged.has(`evt_dr_${i}`)).toBe(true);
    }
  });
});
