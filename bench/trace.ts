/**
 * `npm run bench` (after bench/fleet-many.ts): what per-event traces cost (issue 17). Ratios in one run,
 * rounds alternated, best of each:
 *
 * 1. engine — `deliver` per event at 32 in flight against the emulator (in this process), without and with
 *             `trace` (a sink that keeps nothing): the capture and redaction alone.
 * 2. fleet  — an in-process worker draining the same number of queued events from a private redis-server,
 *             without and with the trace store (`worker --trace`): capture, redaction and the Redis write.
 *
 * BENCH_TRACE (events per round, default 2000) scales it.
 */
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, createTraceStore, Engine, startWorker, type EventTrace, type IntegrationRecord } from '../engine/index.js';
import { benchEvents, benchRecord, deliverRate } from './events.js';
import { startRedis } from '../test/helpers/redis.js';

const N = Number(process.env.BENCH_TRACE ?? 2_000);
const ROUNDS = 3;
const record = benchRecord;
const events = (tag: string) => benchEvents(N, tag);

const emu = await startMarketingCloudEmulator();
const redis = await startRedis();
const engine = await Engine.load();
try {
  // 1. The engine alone.
  const integration = engine.createIntegration(record as IntegrationRecord, { endpoint: emu.url });
  let kept = 0;
  const sink = (t: EventTrace) => void (kept += t.attempts.length);
  const engineRound = (trace: boolean, tag: string): Promise<number> => deliverRate((e) => integration.deliver(e, trace ? { trace: sink } : {}), events(tag));
  await engineRound(false, 'warm1');
  await engineRound(true, 'warm2');
  const eng = { off: 0, on: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    eng.off = Math.max(eng.off, await engineRound(false, `e_off_${r}`));
    eng.on = Math.max(eng.on, await engineRound(true, `e_on_${r}`));
  }
  if (!kept) throw new Error('no trace was captured');
  console.log(`trace · engine: ${Math.round(eng.off)} events/s without traces, ${Math.round(eng.on)} with (${(eng.on / eng.off).toFixed(2)}×)`);

  // 2. The fleet: an in-process worker and the Redis trace store.
  const queue = await createRedisQueue({ url: redis.url, prefix: 'bench:' });
  const store = await createTraceStore({ url: redis.url, prefix: 'bench:' });
  const fleetRound = async (trace: boolean, r: string): Promise<number> => {
    const rec: Record<string, any> = { ...record, id: `int_bench_${r}` };
    await queue.enqueue({ id: rec.id, scope: engine.createIntegration(rec as IntegrationRecord).credentialScope, name: rec.name }, events(r));
    const t0 = performance.now();
    const w = await startWorker({ engine, redis: redis.url, keyPrefix: 'bench:', integrations: [rec], endpoint: emu.url, concurrency: 32, pollMs: 50, ...(trace ? { trace: store } : {}) });
    while (w.counts.delivered < N) await new Promise((res) => setTimeout(res, 5));
    const rate = N / ((performance.now() - t0) / 1000);
    await w.stop();
    return rate;
  };
  await fleetRound(false, 'warm_off');
  await fleetRound(true, 'warm_on');
  const fleet = { off: 0, on: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    fleet.off = Math.max(fleet.off, await fleetRound(false, `off_${r}`));
    fleet.on = Math.max(fleet.on, await fleetRound(true, `on_${r}`));
  }
  const stored = await store.find(`evt_on_0_0`, ['int_bench_on_0']);
  if (!stored.length) throw new Error('no trace was stored');
  console.log(`trace · fleet (1 worker, Redis): ${Math.round(fleet.off)} events/s without traces, ${Math.round(fleet.on)} with (${(fleet.on / fleet.off).toFixed(2)}×)`);
  await store.close();
  await queue.close();
} finally {
  engine.close();
  await emu.close();
  await redis.stop();
}
