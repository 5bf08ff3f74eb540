/** The Redis Streams queue's lease rules, with two consumers on a real Redis. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue, type RedisQueue } from '../engine/index.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

let redis: RedisServer;
const open: RedisQueue[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  for (const q of open) await q.close();
  await redis?.stop();
});

async function consumer(name: string): Promise<RedisQueue> {
  const q = await createRedisQueue({ url: redis.url, consumer: name, visibilityTimeoutMs: 1_000, claimIntervalMs: 0, promoteIntervalMs: 0 });
  open.push(q);
  return q;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const done = (id: string) => ({ kind: 'done' as const, status: 'delivered' as const, outcome: JSON.stringify({ event_id: id, disposition: 'delivered' }) });

describe('Redis Streams queue leases', () => {
  it('a lease not renewed goes to another consumer, flagged reclaimed; only the holder can settle it', async () => {
    const a = await consumer('a');
    const b = await consumer('b');
    await a.enqueue({ id: 'leases', scope: 'test' }, [{ event_id: 'e1' }]);
    const [la] = await a.take('leases', 10);
    expect(la).toMatchObject({ reclaimed: false, message: { event: { event_id: 'e1' }, history: [] } });
    expect(await b.take('leases', 10)).toEqual([]); // held, not yet expired
    await sleep(1_100);
    const [lb] = await b.take('leases', 10);
    expect(lb).toMatchObject({ id: la!.id, reclaimed: true });
    expect(await a.settle('leases', la!, done('e1'))).toBe(false); // lost: nothing recorded
    expect(await b.settle('leases', lb!, done('e1'))).toBe(true);
    expect(await b.settle('leases', lb!, done('e1'))).toBe(false); // settled once only
    expect(await a.status('leases')).toMatchObject({ waiting: 0, in_flight: 0, delivered: 1 });
  });

  it('settles made together go in one round trip; each is answered for itself, also far apart among many other leases', async () => {
    const a = await consumer('batch-a');
    const b = await consumer('batch-b');
    await a.enqueue({ id: 'batch', scope: 'test' }, Array.from({ length: 300 }, (_, i) => ({ event_id: `b${i}` })));
    const leases = await a.take('batch', 300);
    expect(leases).toHaveLength(300);
    const [other] = await b.take('batch', 10);
    expect(other).toBeUndefined(); // all 300 held by a
    const first = leases[0]!;
    const last = leases[299]!;
    const trips = a.roundTrips;
    // Same turn of the event loop: one script call. The first and the last lease have 298 of a's leases
    // between them (more than the script's range read returns), and one lease is settled twice.
    const results = await Promise.all([
      a.settle('batch', first, done('b0')),
      a.settle('batch', last, { kind: 'done', status: 'skipped', outcome: '{}' }),
      a.settle('batch', first, done('b0')),
      b.settle('batch', leases[1]!, done('b1')), // b does not hold it
    ]);
    expect(results).toEqual([true, true, false, false]);
    expect(a.roundTrips - trips).toBe(1);
    expect(await a.status('batch')).toMatchObject({ in_flight: 298, delivered: 1, skipped: 1 });
    expect(await Promise.all(leases.slice(1, 299).map((l, i) => a.settle('batch', l, done(`b${i + 1}`))))).toEqual(Array(298).fill(true));
    expect(await a.status('batch')).toMatchObject({ waiting: 0, in_flight: 0, delivered: 299, skipped: 1 });
  });

  it('a renewed lease stays with its holder; a released event comes back at once without an attempt', async () => {
    const a = await consumer('c');
    const b = await consumer('d');
    await a.enqueue({ id: 'renew', scope: 'test' }, [{ event_id: 'e2' }]);
    const [la] = await a.take('renew', 10);
    for (let i = 0; i < 12; i++) { // 1.2 s: longer than the visibility timeout
      await sleep(100);
      expect(await a.renew('renew', [la!.id])).toEqual([]);
    }
    expect(await b.take('renew', 10)).toEqual([]);
    expect(await a.release('renew', la!, { ...la!.message, possibly_duplicated: true })).toBe(true);
    const [lb] = await b.take('renew', 10);
    expect(lb).toMatchObject({ reclaimed: false, message: { job_id: la!.message.job_id, possibly_duplicated: true, history: [] } });
    expect(await a.renew('renew', [la!.id])).toEqual([la!.id]);
  });

  it('a retry comes back when due, with its history; a dead letter stays until replayed', async () => {
    const q = await consumer('e');
    await q.enqueue({ id: 'later', scope: 'test' }, [{ event_id: 'e3' }]);
    const [l1] = await q.take('later', 10);
    const history = [{ attempt: 1, at: new Date().toISOString(), status: 'failed' as const, reason: 'http_error', http_status: 503, http_attempts: 2, duration_ms: 5 }];
    expect(await q.settle('later', l1!, { kind: 'retry', outcome: '{}', delay_ms: 1_500, message: { ...l1!.message, history } })).toBe(true);
    expect(await q.status('later')).toMatchObject({ waiting: 0, scheduled_retry: 1, failed: 1 });
    expect(await q.take('later', 10)).toEqual([]);
    await sleep(1_600);
    const [l2] = await q.take('later', 10);
    expect(l2!.message).toMatchObject({ job_id: l1!.message.job_id, history });
    const whole = [...history, { ...history[0]!, attempt: 2 }];
    const entry = JSON.stringify({ dead_letter: { reason: 'http_error', attempts: 2, retryable: true, history: whole }, event: l2!.message.event });
    expect(await q.settle('later', l2!, { kind: 'dead', outcome: '{}', job_id: l2!.message.job_id, entry })).toBe(true);
    expect(await q.status('later')).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, failed: 2, dead_lettered: 1 });
    expect(await q.deadLetters('later')).toEqual([entry]);
    expect(await q.replay({ id: 'later', scope: 'test' })).toEqual({ replayed: 1, not_retryable: 0, unreadable: 0 });
    expect(await q.replay({ id: 'later', scope: 'test' })).toEqual({ replayed: 0, not_retryable: 0, unreadable: 0 });
    const [l3] = await q.take('later', 10);
    // The history comes back whole (both attempts); attempts count afresh after it.
    expect(l3!.message).toMatchObject({ job_id: l1!.message.job_id, history: whole, replayed_after: 2, replays: 1, event: { event_id: 'e3' } });
    expect(await q.status('later')).toMatchObject({ dead_lettered: 0, replayed: 1, in_flight: 1 });
  });

  it('replay puts back only dead letters the engine classed retryable; all: the others too', async () => {
    const q = await consumer('f');
    const rec = { id: 'perm', scope: 'test' };
    await q.enqueue(rec, [{ event_id: 'p1' }, { event_id: 'p2' }, { event_id: 'p3' }]);
    const leases = await q.take('perm', 10);
    const kinds = [true, false, null];
    for (const [i, l] of leases.entries()) {
      const entry = JSON.stringify({ dead_letter: { reason: kinds[i] ? 'http_error' : 'check_failed', retryable: kinds[i], history: [{ attempt: 1, status: 'failed' }] }, event: l.message.event });
      expect(await q.settle('perm', l, { kind: 'dead', outcome: '{}', job_id: l.message.job_id, entry })).toBe(true);
    }
    expect(await q.replay(rec)).toEqual({ replayed: 1, not_retryable: 2, unreadable: 0 });
    expect((await q.take('perm', 10)).map((l) => (l.message.event as { event_id: string }).event_id)).toEqual(['p1']);
    expect(await q.status('perm')).toMatchObject({ dead_lettered: 2 });
    expect(await q.replay(rec, { all: true })).toEqual({ replayed: 2, not_retryable: 0, unreadable: 0 });
    expect((await q.take('perm', 10)).map((l) => (l.message.event as { event_id: string }).event_id).sort()).toEqual(['p2', 'p3']);
  });
});
