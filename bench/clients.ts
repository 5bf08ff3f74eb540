/**
 * `npm run bench`: CPU per delivered event, client by client, against a trivial server in its own process
 * (bench/trivial-server.ts), so the server's work is not in the figure (bench/run.ts's delivery rows measure
 * against the emulator, which does far more per request than any client).
 *
 * Rows (the same Marketing Cloud request, BENCH_CLIENTS events per run, 64 in flight, keep-alive):
 * - raw undici `request` and raw `node:http` with precomputed bodies: the transport's floor;
 * - raw got (a plain keep-alive client), and got configured as the engine configures it (engine/run/http.ts);
 * - the library: `Integration.deliverAll` (mapping, checks, token, outcomes);
 * - the CLI: `deliver` from an NDJSON file, its own process (CPU read at exit, bench/cpu-at-exit.ts);
 * - one `worker` draining a Redis queue (its CPU from its own /metrics, process_cpu_*), plus redis-server's
 *   CPU (INFO cpu) and commands per delivered event, less what the bench's enqueue costs Redis alone.
 * In-process rows: user+sys CPU of this process over a run (after a warm-up). CLI: marginal, the CPU of a
 * run of N events less one of N/5, over 4N/5 (start-up and spec loading out). Worker: the CPU between two
 * scrapes around a drain (already marginal: it is up and idle before). Each rep runs every row once, in a
 * rotated order; ratios are taken within a rep, then reported min–max over BENCH_CLIENT_REPS reps.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import got from 'got';
import { Redis } from 'ioredis';
import { Agent, request as undiciRequest } from 'undici';
import { createRedisQueue, Engine, type IntegrationRecord } from '../engine/index.js';
import { packagePath } from '../engine/paths.js';
import { createHttpClient, withTimeouts } from '../engine/run/http.js';
import type { SignalEvent } from '../engine/run/event.js';
import { startRedis } from '../test/helpers/redis.js';
import { commandsProcessed } from './redis-stats.js';

const N = Number(process.env.BENCH_CLIENTS ?? 20_000);
const REPS = Number(process.env.BENCH_CLIENT_REPS ?? 3);
const IN_FLIGHT = 64;
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const CPU_AT_EXIT = fileURLToPath(new URL('./cpu-at-exit.js', import.meta.url));
const SERVER = fileURLToPath(new URL('./trivial-server.js', import.meta.url));

type Json = Record<string, any>;
const record = JSON.parse(readFileSync(packagePath('examples', 'integration.json'), 'utf8')) as IntegrationRecord;
const lead = JSON.parse(readFileSync(packagePath('examples', 'lead-submitted.json'), 'utf8')) as Json;
const eventsLike = (tag: string, n: number) => Array.from({ length: n }, (_, i) => ({ ...lead, event_id: `evt_${tag}_${i}` }) as SignalEvent);

async function startServer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      const m = /listening on (\S+)/.exec(d.toString());
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`trivial server exited (${code}) before listening`)));
  });
  return { url, stop: async () => { if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit'); } } };
}

/** n sends, IN_FLIGHT at a time. */
async function pool(n: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < n) await send(next++); }));
}

/** This process's CPU (µs, user+sys) per event over one run. */
async function cpuPerEvent(n: number, run: () => Promise<unknown>): Promise<number> {
  (globalThis as { gc?: () => void }).gc?.();
  const c = process.cpuUsage();
  await run();
  const d = process.cpuUsage(c);
  return (d.user + d.system) / n;
}

const server = await startServer();
const redis = await startRedis();
const admin = new Redis(redis.url);
const queue = await createRedisQueue({ url: redis.url });
const dir = mkdtempSync(join(tmpdir(), 'signal-bench-clients-'));
const samples = new Map<string, number[]>();
const add = (row: string, v: number) => samples.set(row, [...(samples.get(row) ?? []), v]);
const extra = { redisUs: [] as number[], commands: [] as number[] };
try {
  const engine = await Engine.load({ endpoint: server.url });
  const integration = engine.createIntegration(record);
  const wire = (await integration.preview(lead as SignalEvent)).at(-1)!;
  const headers = { ...wire.headers, Authorization: 'Bearer bench-token' };
  const body = wire.body ?? '';
  const url = new URL(wire.url);

  const undici = new Agent({ connections: 128, pipelining: 1 });
  const nodeAgent = new http.Agent({ keepAlive: true, maxSockets: 128, maxFreeSockets: 128 });
  const plainGot = got.extend({ retry: { limit: 0 }, throwHttpErrors: false, agent: { http: nodeAgent } });
  const engineTransport = createHttpClient();
  const engineGot = withTimeouts(engineTransport.client, { connect_ms: 5_000, response_ms: 30_000 });

  const sides: Record<string, (n: number, tag: string) => Promise<unknown>> = {
    'raw undici request': (n) => pool(n, async () => {
      const res = await undiciRequest(url, { method: 'POST', headers, body, dispatcher: undici });
      await res.body.dump();
    }),
    'raw node:http': (n) => pool(n, () => new Promise<void>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) }, agent: nodeAgent }, (res) => {
        res.resume();
        res.once('end', resolve);
      });
      req.once('error', reject);
      req.end(body);
    })),
    'raw got': (n) => pool(n, () => plainGot.post(url, { headers, body })),
    "got as the engine configures it": (n) => pool(n, () => engineGot.post(url, { headers, body })),
    'library deliverAll': (n, tag) => integration.deliverAll(eventsLike(tag, n), { concurrency: IN_FLIGHT }),
  };
  for (const [name, run] of Object.entries(sides)) await run(500, `warm_${name.length}`);

  // The CLI's inputs: N and N/5 events, distinct ids.
  const recFile = join(dir, 'record.json');
  writeFileSync(recFile, JSON.stringify(record));
  const small = Math.max(1, Math.floor(N / 5));
  const ndjson = (tag: string, n: number) => {
    const f = join(dir, `${tag}.ndjson`);
    writeFileSync(f, eventsLike(tag, n).map((e) => JSON.stringify(e)).join('\n') + '\n');
    return f;
  };
  const bigFile = ndjson('cli_big', N);
  const smallFile = ndjson('cli_small', small);
  const cliCpu = async (file: string): Promise<number> => {
    const out = join(dir, 'cpu.json');
    const child = spawn(process.execPath, ['--import', CPU_AT_EXIT, CLI, 'deliver', '--integration', recFile, '--events', file, '--endpoint', server.url, '--concurrency', String(IN_FLIGHT)], {
      stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, BENCH_CPU_FILE: out },
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`deliver exited ${code}`);
    const u = JSON.parse(readFileSync(out, 'utf8')) as { user: number; system: number };
    return u.user + u.system;
  };

  // One worker, up and idle before any measured drain.
  const workerRec = { ...record, id: 'bench-clients-worker' };
  const workerFile = join(dir, 'worker-record.json');
  writeFileSync(workerFile, JSON.stringify(workerRec));
  const worker = spawn(process.execPath, [CLI, 'worker', '--redis', redis.url, '--integration', workerFile, '--endpoint', server.url, '--concurrency', String(IN_FLIGHT), '--metrics-port', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const metricsUrl = await new Promise<string>((resolve, reject) => {
    let err = '';
    worker.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"metrics":"([^"]+)"/.exec(err);
      if (m) resolve(m[1]!);
      if (err.length > 100_000) err = err.slice(-10_000);
    });
    worker.once('exit', () => reject(new Error(`worker exited early:\n${err}`)));
  });
  const workerCpu = async (): Promise<number> => {
    const text = await (await fetch(metricsUrl)).text();
    const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return (read('process_cpu_user_seconds_total') + read('process_cpu_system_seconds_total')) * 1e6;
  };
  const redisCpu = async (): Promise<number> => {
    const info = await admin.info('cpu');
    const read = (k: string) => Number(new RegExp(`^${k}:(\\S+)`, 'm').exec(info)?.[1] ?? NaN);
    return (read('used_cpu_user') + read('used_cpu_sys')) * 1e6;
  };
  const scope = { id: workerRec.id, scope: engine.createIntegration(workerRec).credentialScope };
  let settled = 0;
  const workerRun = async (tag: string) => {
    // What the enqueue alone costs Redis, on a queue no worker reads: taken off the drain's figure.
    const r0 = await redisCpu();
    const c0 = await commandsProcessed(admin);
    await queue.enqueue({ id: `bench-clients-idle-${tag}`, scope: scope.scope }, eventsLike(`idle_${tag}`, N));
    const enqueueUs = (await redisCpu()) - r0;
    const enqueueCommands = (await commandsProcessed(admin)) - c0 - 1;
    await queue.purge(`bench-clients-idle-${tag}`);

    const w0 = await workerCpu();
    const before = await redisCpu();
    const cmds0 = await commandsProcessed(admin);
    let polls = 0;
    await queue.enqueue(scope, eventsLike(`worker_${tag}`, N));
    settled += N;
    for (;;) {
      polls++;
      const s = await queue.status(scope.id);
      if (s.delivered + s.dead_lettered >= settled) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const redisUs = (await redisCpu()) - before - enqueueUs;
    // Less the enqueue's commands, this process's polling (5 per status read) and its INFO calls.
    const commands = (await commandsProcessed(admin)) - cmds0 - enqueueCommands - polls * 5 - 2;
    add('one worker (queue on Redis)', ((await workerCpu()) - w0) / N);
    extra.redisUs.push(redisUs / N);
    extra.commands.push(commands / N);
  };

  // BENCH_CLIENT_ONLY=worker,CLI,... keeps the rows whose name contains one of them (raw undici always runs: the ratios' base).
  const only = process.env.BENCH_CLIENT_ONLY?.split(',').map((x) => x.trim());
  const all = [...Object.keys(sides), 'CLI deliver', 'one worker (queue on Redis)'].filter((r) => !only || r === 'raw undici request' || only.some((o) => r.includes(o)));
  for (let rep = 0; rep < REPS; rep++) {
    for (let j = 0; j < all.length; j++) {
      const row = all[(rep + j) % all.length]!;
      if (row === 'CLI deliver') {
        const big = await cliCpu(bigFile);
        const little = await cliCpu(smallFile);
        add(row, (big - little) / (N - small));
      } else if (row === 'one worker (queue on Redis)') {
        await workerRun(String(rep));
      } else {
        add(row, await cpuPerEvent(N, () => sides[row]!(N, `r${rep}_${j}`)));
      }
    }
  }
  worker.kill('SIGTERM');
  await once(worker, 'exit');
  engineTransport.close();
  nodeAgent.destroy();
  await undici.close();
  engine.close();
} finally {
  await queue.close();
  admin.disconnect();
  await redis.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

const range = (xs: number[], digits = 0) => {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return lo.toFixed(digits) === hi.toFixed(digits) ? lo.toFixed(digits) : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`;
};
const base = samples.get('raw undici request')!;
const lib = samples.get('library deliverAll');
const rows = [['client', 'µs CPU per event', '× raw undici', 'notes']];
for (const [row, xs] of samples) {
  const notes = row === 'CLI deliver' && lib ? `${range(xs.map((x, i) => x / lib![i]!), 2)}× deliverAll` : row.startsWith('one worker') ? `+ redis-server ${range(extra.redisUs)} µs, ${range(extra.commands, 1)} Redis commands per event` : '';
  rows.push([row, range(xs), `${range(xs.map((x, i) => x / base[i]!), 2)}×`, notes]);
}
console.log(`\nclients: CPU per delivered event, ${N} events per run, ${IN_FLIGHT} in flight, trivial server in its own process, ${REPS} reps (min–max), ${cpus().length} cores, load ${loadavg()[0]!.toFixed(1)}`);
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
