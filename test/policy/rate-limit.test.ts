import { describe, expect, it } from 'vitest';
import { RateLimiter, takeToken, type BucketState } from '../../engine/policy/rate-limit.js';

/** Take `count` tokens at the given clock readings, returning the waits. */
function waits(rpm: number, times: number[]): number[] {
  const rate = rpm / 60_000;
  const capacity = Math.max(1, rpm / 60);
  let state: BucketState = { tokens: capacity, updated_at: 0 };
  return times.map((now) => {
    const r = takeToken(state, rate, capacity, now);
    state = r.state;
    return r.wait_ms;
  });
}

describe('takeToken', () => {
  it('120 rpm: two tokens immediately, then spaced by 500 ms', () => {
    expect(waits(120, [0, 0, 0, 0, 0])).toEqual([0, 0, 500, 1000, 1500]);
  });

  it('120 rpm: refills at 2/s and never beyond capacity', () => {
    // Drain, then after 500 ms exactly one token is back.
    expect(waits(120, [0, 0, 500, 500])).toEqual([0, 0, 0, 500]);
    // A long idle period refills only up to capacity (2), not a minute's worth.
    expect(waits(120, [0, 0, 60_000, 60_000, 60_000])).toEqual([0, 0, 0, 0, 500]);
  });

  it('low rates keep a capacity of 1 token', () => {
    // 6 rpm: one request per 10 s, burst of 1.
    expect(waits(6, [0, 0, 0])).toEqual([0, 10_000, 20_000]);
  });

  it('queued reservations go negative and wait behind each other', () => {
    const r1 = takeToken({ tokens: 0, updated_at: 0 }, 0.001, 1, 0);
    expect(r1.state.tokens).toBe(-1);
    expect(r1.wait_ms).toBe(1000);
    const r2 = takeToken(r1.state, 0.001, 1, 400);
    expect(r2.wait_ms).toBe(1600);
  });

  it('a clock going backwards mints no tokens', () => {
    const r = takeToken({ tokens: 0, updated_at: 1000 }, 0.001, 1, 0);
    expect(r.wait_ms).toBe(1000);
    expect(r.state.updated_at).toBe(1000);
  });
});

describe('RateLimiter', () => {
  it.each([0, -1, NaN, Infinity])('rejects requests_per_minute = %s', (n) => {
    expect(() => new RateLimiter(n)).toThrow(RangeError);
  });

  it('never drops: 5 acquisitions at 600 rpm all resolve, in FIFO order', async () => {
    const limiter = new RateLimiter(600); // 10/s, burst 10: these come from the burst; the next test queues
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4].map((i) => limiter.acquire().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('queued waiters resolve in FIFO order once the burst is spent', async () => {
    // 600 rpm = capacity 10; take the burst, then 5 more must queue (100 ms apart, ~0.5 s total).
    const limiter = new RateLimiter(600);
    for (let i = 0; i < 10; i++) await limiter.acquire();
    const order: number[] = [];
    await Promise.all([0, 1, 2, 3, 4].map((i) => limiter.acquire().then(() => order.push(i))));
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('waits for tokens using the injected clock', async () => {
    let t = 0;
    const limiter = new RateLimiter(60_000, () => t); // 1 per ms, capacity 1000
    const order: number[] = [];
    const all = Array.from({ length: 1002 }, (_, i) => limiter.acquire().then(() => order.push(i)));
    // 1000 resolve from the burst; the last two are queued until the (fake) clock advances.
    await Promise.resolve();
    await new Promise((r) => setImmediate(r));
    expect(order.length).toBe(1000);
    t = 10;
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 1002 }, (_, i) => i));
  });

  it('an aborted waiter rejects and the others still resolve in order', async () => {
    const limiter = new RateLimiter(600);
    for (let i = 0; i < 10; i++) await limiter.acquire();
    const controller = new AbortController();
    const order: string[] = [];
    const a = limiter.acquire().then(() => order.push('a'));
    const b = limiter.acquire(controller.signal).then(
      () => order.push('b'),
      (e: unknown) => order.push(`b:${(e as Error).name}`),
    );
    const c = limiter.acquire().then(() => order.push('c'));
    controller.abort();
    await Promise.all([a, b, c]);
    expect(order).toEqual(['b:AbortError', 'a', 'c']);
  });

  it('aborting the head returns its token', async () => {
    let t = 0;
    const limiter = new RateLimiter(60, () => t); // 1/s, capacity 1
    await limiter.acquire();
    const controller = new AbortController();
    const head = limiter.acquire(controller.signal).catch((e: unknown) => e);
    controller.abort(new Error('stop'));
    expect(((await head) as Error).message).toBe('stop');
    // After 1 s of fake time exactly one token exists; had the aborted reservation leaked, this would queue.
    t = 1000;
    let resolved = false;
    const next = limiter.acquire().then(() => (resolved = true));
    await Promise.resolve();
    expect(resolved).toBe(true);
    await next;
  });

  it('rejects at once with an already-aborted signal', async () => {
    const limiter = new RateLimiter(60);
    await expect(limiter.acquire(AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
  });
});
