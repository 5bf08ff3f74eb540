/**
 * `npm run bench` (after bench/run.ts): the delivery fleet. A private redis-server, the emulator in this
 * process, and 1, 2 then 3 `worker` processes draining the same number of queued events.
 *
 * Reported: events/s per worker count, as ratios against one worker and against the engine delivering the
 * same events in-process without a queue (the baseline, measured in the same run); the Redis round trips
 * the workers made per delivered event (their own counter, scraped from --metrics-port), and the commands
 * Redis executed for the workers per delivered event (INFO commandstats delta less the bench's own
 * enqueue and polling; commands inside Lua scripts count there). Timing starts once the workers are up,
 * at the enqueue (pipelined, included), and ends when the last event is settled.
 * On a 2-core machine three workers, Redis and the emulator share two cores: expect no gain past two.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, Engine, type IntegrationRecord, type SignalEvent } from '../engine/index.js';
import { packagePath } from '../engine/paths.js';
import { startRedis } from '../test/helpers/redis.js';
import { commandsProcessed } from './redis-stats.js';

const N = Number(process.env.BENCH_FLEET ?? 3_000);
const CONCURRENCY = 32;
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const record = JSON.parse(readFileSync(packagePath('examples', 'integration.json'), 'utf8')) as Record<string, any>;
const template = JSON.parse(readFileSync(packagePath('examples', 'lead-submitted.json'), 'utf8')) as Record<string, any>;
const events = (tag: string) => Array.from({ length: N }, (_, i) => ({ ...template, event_id: `evt_${tag}_${i}` }));

function worker(args: string[]): { child: ChildProcess; metrics: Promise<string>; exited: Promise<unknown> } {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const metrics = new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"metrics":"([^"]+)"/.exec(err);
      if (m) resolve(m[1]!);
    });
    child.once('exit', () => reject(new Error(`worker exited early:\n${err}`)));
  });
  metrics.catch(() => undefined);
  return { child, metrics, exited: new Promise((r) => child.once('exit', r)) };
}

const redis = await startRedis();
const emu = await startMarketingCloudEmulator();
const admin = new Redis(redis.url);
const queue = await createRedisQueue({ url: redis.url });
const rows: string[][] = [];
try {
  // Baseline: the same engine, the same events, no queue.
  const engine = await Engine.load({ endpoint: emu.url });
  const direct = engine.createIntegration(record as IntegrationRecord);
  await direct.deliverAll(events('warm').slice(0, 100) as SignalEvent[], { concurrency: CONCURRENCY });
  let t = performance.now();
  await direct.deliverAll(events('direct') as SignalEvent[], { concurrency: CONCURRENCY });
  const directRate = N / ((performance.now() - t) / 1000);
  engine.close();
  rows.push(['in-process deliverAll (no queue)', `${directRate.toFixed(0)} events/s`, '1.00× baseline', '-', '-']);

  let oneRate = 0;
  for (const n of [1, 2, 3]) {
    const name = `bench-fleet-${n}`;
    const rec = { ...record, id: name, name: `Bench fleet ${n}` };
    const recFile = `${process.env.TMPDIR ?? '/tmp'}/signal-bench-fleet-${process.pid}-${n}.json`;
    (await import('node:fs')).writeFileSync(recFile, JSON.stringify(rec));
    // Workers first (process start and spec loading are not what is measured), then the events.
    const ws = Array.from({ length: n }, () =>
      worker(['--redis', redis.url, '--integration', recFile, '--endpoint', emu.url, '--concurrency', String(CONCURRENCY), '--metrics-port', '0', '--log-level', 'info']),
    );
    const urls = await Promise.all(ws.map((w) => w.metrics));
    const batch = events(`fleet${n}`);
    const before = await commandsProcessed(admin);
    const polls = { n: 0 };
    t = performance.now();
    const enqueueTrips = queue.roundTrips;
    await queue.enqueue({ id: name, scope: direct.credentialScope }, batch);
    const enqueueCommands = N + (queue.roundTrips - enqueueTrips); // one XADD per event, one HINCRBY per pipeline
    for (;;) {
      polls.n++;
      const s = await queue.status(name);
      if (s.delivered + s.dead_lettered >= N) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seconds = (performance.now() - t) / 1000;
    // This process's own polling: 5 commands per status read, plus the INFO calls.
    const redisCommands = (await commandsProcessed(admin)) - before - polls.n * 5 - 1 - enqueueCommands;
    let trips = 0;
    for (const url of urls) {
      const text = await (await fetch(url)).text();
      trips += Number(/^signal_queue_round_trips_total (\S+)$/m.exec(text)?.[1] ?? 0);
    }
    for (const w of ws) w.child.kill('SIGTERM');
    await Promise.all(ws.map((w) => w.exited));
    (await import('node:fs')).rmSync(recFile, { force: true });
    const rate = N / seconds;
    if (n === 1) oneRate = rate;
    rows.push([
      `${n} worker${n > 1 ? 's' : ''} (queue)`,
      `${rate.toFixed(0)} events/s`,
      `${(rate / directRate).toFixed(2)}× baseline${n > 1 ? `, ${(rate / oneRate).toFixed(2)}× one worker` : ''}`,
      `${(trips / N).toFixed(2)} round trips/event`,
      `${(redisCommands / N).toFixed(2)} Redis commands/event`,
    ]);
  }
} finally {
  await queue.close();
  admin.disconnect();
  await emu.close();
  await redis.stop();
}
console.log(`\nfleet: ${N} events per run, concurrency ${CONCURRENCY} per worker, emulator in the bench process, ${(await import('node:os')).cpus().length} cores`);
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
