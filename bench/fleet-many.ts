/**
 * `npm run bench` (after bench/fleet.ts): one fleet serving thousands of integrations. A private
 * redis-server, the emulator in this process, 2 `worker --all-records --concurrency 4` processes following
 * the registry.
 *
 * Per round, in the same run: 1 integration × 10,000 events (the baseline) and 2,000 integrations × 5
 * events: drain time, Redis commands per delivered event (INFO commandstats delta, Lua-internal commands
 * included, less the bench's own enqueue and polling), Redis connections per worker, worker peak RSS
 * (VmHWM). Then, with 2,000 registered integrations and nothing queued: Redis commands/s per worker and
 * worker CPU while idle, and the workers' start-up time with 2,000 records. BENCH_MANY_ROUNDS (default 3).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { createRecordRegistry, createRedisQueue, Engine, type IntegrationRecord } from '../engine/index.js';
import { packagePath } from '../engine/paths.js';
import { startRedis } from '../test/helpers/redis.js';
import { commandStats, commandsProcessed } from './redis-stats.js';

const ROUNDS = Number(process.env.BENCH_MANY_ROUNDS ?? 3);
const MANY = 2_000;
const PER = 5;
const TOTAL = MANY * PER;
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

const base = JSON.parse(readFileSync(packagePath('examples', 'integration.json'), 'utf8')) as Record<string, any>;
const template = JSON.parse(readFileSync(packagePath('examples', 'lead-submitted.json'), 'utf8')) as Record<string, any>;

const clients = async (r: Redis): Promise<number> => Number(/connected_clients:(\d+)/.exec(await r.info('clients'))?.[1] ?? 0);

function procStat(pid: number): { hwmKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { hwmKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0), cpuTicks: Number(stat[11]) + Number(stat[12]) };
}

/** A worker process; `settled()` counts the outcome lines it printed (one per queue attempt). */
function worker(args: string[]): { child: ChildProcess; ready: Promise<number>; exited: Promise<unknown>; settled: () => number } {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let lines = 0;
  child.stdout!.on('data', (d: Buffer) => {
    for (const b of d) if (b === 10) lines++;
  });
  let err = '';
  const ready = new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('"consuming"')) resolve(Date.now() - started);
    });
    child.once('exit', () => reject(new Error(`worker exited early:\n${err}`)));
  });
  ready.catch(() => undefined);
  return { child, ready, exited: new Promise((r) => child.once('exit', r)), settled: () => lines };
}

const redis = await startRedis();
const emu = await startMarketingCloudEmulator();
const admin = new Redis(redis.url);
const engine = await Engine.load();
const scope = engine.createIntegration(base as IntegrationRecord).credentialScope;
engine.close();
const lines: string[] = [];
const out = (s: string) => {
  lines.push(s);
  console.log(s);
};

interface Run {
  seconds: number;
  commandsPerEvent: number;
  connectionsPerWorker: number;
  rssMb: number;
  startupMs: number[];
}

/** Put `count` records (ids prefix-0..), start 2 workers following the registry, enqueue `per` each, wait for all. */
async function drain(prefix: string, count: number, per: number): Promise<Run> {
  const registry = await createRecordRegistry({ url: redis.url, prefix });
  const queue = await createRedisQueue({ url: redis.url, prefix });
  const ids = Array.from({ length: count }, (_, i) => `bench-${i}`);
  try {
    for (let i = 0; i < ids.length; i += 500) await registry.put(ids.slice(i, i + 500).map((id) => ({ ...base, id, name: `Bench ${id}` })));
    const before0 = await clients(admin);
    const ws = [0, 1].map(() => worker(['--redis', redis.url, '--key-prefix', prefix, '--all-records', '--endpoint', emu.url, '--concurrency', '4', '--log-level', 'info']));
    const startupMs = await Promise.all(ws.map((w) => w.ready));
    const connectionsPerWorker = ((await clients(admin)) - before0) / 2;
    const before = await commandsProcessed(admin);
    const stats0 = process.env.BENCH_MANY_DEBUG ? await commandStats(admin) : undefined;
    const t = performance.now();
    let enqueueCommands = 0;
    for (const id of ids) {
      const tripsBefore = queue.roundTrips;
      await queue.enqueue({ id, scope }, Array.from({ length: per }, (_, i) => ({ ...template, event_id: `evt_${prefix}${id}_${i}` })));
      // One XADD per event; per pipeline of up to 500: HINCRBY, the due-time script (+2 inside), PUBLISH; ensure: XGROUP, SADD, HSET.
      enqueueCommands += per + (queue.roundTrips - tripsBefore) * 4 + 3;
    }
    while (ws.reduce((n, w) => n + w.settled(), 0) < count * per) await new Promise((r) => setTimeout(r, 20));
    const seconds = (performance.now() - t) / 1000;
    const redisCommands = (await commandsProcessed(admin)) - before - enqueueCommands - 1;
    if (stats0) {
      const stats1 = await commandStats(admin);
      console.log(prefix, [...stats1].map(([k, v]) => [k, ((v - (stats0.get(k) ?? 0)) / (count * per)).toFixed(2)]).filter(([, v]) => v !== '0.00'));
    }
    if ((await totalDelivered(prefix, ids)) !== count * per) throw new Error('not every event was delivered');
    const rssMb = Math.max(...ws.map((w) => procStat(w.child.pid!).hwmKb)) / 1024;
    for (const w of ws) w.child.kill('SIGTERM');
    await Promise.all(ws.map((w) => w.exited));
    return { seconds, commandsPerEvent: redisCommands / (count * per), connectionsPerWorker, rssMb, startupMs };
  } finally {
    await registry.close();
    await queue.close();
  }
}

/** Delivered events over every integration (HGET of each stats hash, pipelined in pages). */
async function totalDelivered(prefix: string, ids: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 500) {
    const p = admin.pipeline();
    for (const id of ids.slice(i, i + 500)) p.hget(`${prefix}{${id}}:stats`, 'delivered');
    for (const [, v] of (await p.exec()) ?? []) n += Number(v) || 0;
  }
  return n;
}

/** 2,000 records registered, nothing queued: Redis commands/s per worker and worker CPU over `ms`. */
async function idle(prefix: string, ms: number): Promise<{ commandsPerSecPerWorker: number; cpuPct: number; connectionsPerWorker: number; startupMs: number[] }> {
  const registry = await createRecordRegistry({ url: redis.url, prefix });
  try {
    const ids = Array.from({ length: MANY }, (_, i) => `idle-${i}`);
    for (let i = 0; i < ids.length; i += 500) await registry.put(ids.slice(i, i + 500).map((id) => ({ ...base, id, name: `Idle ${id}` })));
    const before0 = await clients(admin);
    const ws = [0, 1].map(() => worker(['--redis', redis.url, '--key-prefix', prefix, '--all-records', '--endpoint', emu.url, '--concurrency', '4', '--log-level', 'info']));
    const startupMs = await Promise.all(ws.map((w) => w.ready));
    await new Promise((r) => setTimeout(r, 1_000)); // settled after start-up
    const connectionsPerWorker = ((await clients(admin)) - before0) / 2;
    const c0 = await commandsProcessed(admin);
    const cpu0 = ws.map((w) => procStat(w.child.pid!).cpuTicks);
    await new Promise((r) => setTimeout(r, ms));
    const c1 = await commandsProcessed(admin);
    const cpu1 = ws.map((w) => procStat(w.child.pid!).cpuTicks);
    for (const w of ws) w.child.kill('SIGTERM');
    await Promise.all(ws.map((w) => w.exited));
    const ticks = Math.max(...cpu1.map((c, i) => c - cpu0[i]!));
    return { commandsPerSecPerWorker: (c1 - c0 - 2) / (ms / 1000) / 2, cpuPct: (ticks / 100 / (ms / 1000)) * 100, connectionsPerWorker, startupMs };
  } finally {
    await registry.close();
  }
}

try {
  out(`\nfleet at many integrations: 2 workers --all-records --concurrency 4, ${TOTAL} events per run, ${(await import('node:os')).cpus().length} cores, ${ROUNDS} rounds`);
  const only = process.env.BENCH_MANY_ONLY;
  const ratios: number[] = [];
  const cmdRatios: number[] = [];
  const one: Run[] = [];
  const many: Run[] = [];
  for (let r = 0; r < (only === 'idle' ? 0 : ROUNDS); r++) {
    // Alternate which side goes first.
    const a = r % 2 === 0 ? await drain(`b1r${r}:`, 1, TOTAL) : undefined;
    const b = await drain(`b2r${r}:`, MANY, PER);
    const a2 = a ?? (await drain(`b1r${r}:`, 1, TOTAL));
    one.push(a2);
    many.push(b);
    ratios.push(b.seconds / a2.seconds);
    cmdRatios.push(b.commandsPerEvent / a2.commandsPerEvent);
  }
  const range = (xs: number[], d = 2) => `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}`;
  if (only !== 'idle') out(`1 × ${TOTAL}:      drain ${range(one.map((x) => TOTAL / x.seconds), 0)} events/s, ${range(one.map((x) => x.commandsPerEvent))} Redis commands/event, ${range(one.map((x) => x.connectionsPerWorker), 1)} connections/worker, peak RSS ${range(one.map((x) => x.rssMb), 0)} MB`);
  if (only !== 'idle') out(`${MANY} × ${PER}:      drain ${range(many.map((x) => TOTAL / x.seconds), 0)} events/s, ${range(many.map((x) => x.commandsPerEvent))} Redis commands/event, ${range(many.map((x) => x.connectionsPerWorker), 1)} connections/worker, peak RSS ${range(many.map((x) => x.rssMb), 0)} MB`);
  if (only !== 'idle') out(`${MANY} × ${PER} vs 1 × ${TOTAL} (same round): drain time ${range(ratios)}×, Redis commands/event ${range(cmdRatios)}×`);
  const idles = [];
  for (let r = 0; r < Math.min(ROUNDS, 2); r++) idles.push(await idle(`idle${r}:`, 5_000));
  out(`idle, ${MANY} integrations registered, nothing queued: ${range(idles.map((x) => x.commandsPerSecPerWorker), 1)} Redis commands/s per worker, worker CPU ${range(idles.map((x) => x.cpuPct), 1)}%, ${range(idles.map((x) => x.connectionsPerWorker), 1)} connections/worker, start-up ${range(idles.flatMap((x) => x.startupMs), 0)} ms`);
} finally {
  admin.disconnect();
  await emu.close();
  await redis.stop();
}
