/**
 * What operators see of a fleet, with real worker processes and a real redis-server: /healthz and /readyz
 * (503 while draining and while Redis is frozen), fleet-wide gauges exported by one worker only (their sum
 * over workers equals `status`), counters initialised at zero, build info, process metrics under
 * prom-client's default names.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import type { QueueStatus } from '../engine/index.js';
import { referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { cli, leadEvents, spawnWorker as spawnWorkerIn, until, writeIn } from './helpers/fleet.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-ops-'));
});
afterAll(async () => {
  try {
    process.kill(redis.pid, 'SIGCONT');
  } catch {
    // already running or gone
  }
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const file = (name: string, content: unknown): string => writeIn(dir, name, content);
/** Every fifth event has no e-mail: refused by the spec's check, dead-lettered at once. */
const events = (prefix: string, n: number): string => file(`${prefix}.ndjson`, leadEvents(prefix, n, (i) => (i % 5 === 4 ? undefined : `${prefix}${i}@example.com`)));
const spawnWorker = (args: string[]) => spawnWorkerIn(args, children);

/** Sum of a metric's samples whose labels include `labels`. */
function sum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[4]);
  }
  return total;
}

describe('operators: health, readiness and metrics that add up', () => {
  it('two workers: fleet gauges summed equal status; zeros for an idle integration; /readyz 503 while draining and while Redis is frozen', { timeout: 90_000 }, async () => {
    const busy = file('busy.json', { ...referenceRecord(), id: 'int_busy', name: 'Busy', retry: { max_attempts: 1, queue: { max_attempts: 3, backoff_ms: 3_600_000 } } });
    const idle = file('idle.json', { ...referenceRecord(), id: 'int_idle', name: 'Idle' });
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', busy, '--events', events('evt_ops', 20)])).code).toBe(0);
    const args = ['--redis', redis.url, '--integration', busy, '--integration', idle, '--endpoint', emu.url, '--concurrency', '4', '--metrics-port', '0', '--drain-timeout', '20'];
    const w1 = spawnWorker(args);
    const w2 = spawnWorker(args);
    const [u1, u2] = await Promise.all([w1.metricsUrl, w2.metricsUrl]);
    const status = async (): Promise<QueueStatus> => (JSON.parse((await cli(['status', '--redis', redis.url, '--integration', busy, '--json'])).out) as Record<string, QueueStatus>).int_busy!;
    await until('every event settled', 20_000, async () => {
      const s = await status();
      return s.delivered === 16 && s.dead_lettered === 4 ? true : undefined;
    });

    // Text outcomes say each thing once: "delivered", or "failed (dead_lettered)" with the reason.
    const text = w1.stdout() + w2.stdout();
    expect(text).toMatch(/^int_busy {2}evt_ops_\d+ {2}delivered {2}attempt 1\/3 {2}id=/m);
    expect(text).toMatch(/^int_busy {2}evt_ops_\d+ {2}failed \(dead_lettered\) {2}attempt 1\/3 {2}check_failed — /m);
    expect(text).not.toMatch(/delivered {2}delivered|skipped {2}skipped/);
    // The dead-letter log line says what happened and what to do.
    const deadLines = [w1, w2].flatMap((w) => w.stderr().trim().split('\n')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'dead-lettered');
    expect(deadLines).toHaveLength(4);
    for (const l of deadLines) expect(l).toMatchObject({ integration: 'int_busy', reason: 'check_failed', message: expect.any(String), hint: expect.stringMatching(/ContactKey/) });

    const scrape = async (u: string) => (await fetch(u)).text();
    const [t1, t2] = await Promise.all([scrape(u1), scrape(u2)]);
    // Exactly one worker exports the fleet-wide gauges; summed over both they equal status.
    expect(sum(t1, 'signal_fleet_gauges_exporter') + sum(t2, 'signal_fleet_gauges_exporter')).toBe(1);
    const s = await status();
    expect(sum(t1, 'signal_dead_letter_depth', { integration: 'int_busy' }) + sum(t2, 'signal_dead_letter_depth', { integration: 'int_busy' })).toBe(s.dead_lettered);
    expect(sum(t1, 'signal_queue_depth', { integration: 'int_busy', state: 'waiting' }) + sum(t2, 'signal_queue_depth', { integration: 'int_busy', state: 'waiting' })).toBe(s.waiting);
    // Per-process counters add up across workers too.
    expect(sum(t1, 'signal_outcomes_total', { integration: 'int_busy', status: 'delivered' }) + sum(t2, 'signal_outcomes_total', { integration: 'int_busy', status: 'delivered' })).toBe(16);
    // An integration that delivered nothing still has its series, at zero.
    for (const t of [t1, t2]) {
      expect(t).toMatch(/^signal_outcomes_total\{integration="int_idle",status="delivered",reason="",disposition="delivered"\} 0$/m);
      expect(t).toMatch(/^signal_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
      expect(t).toMatch(/^process_cpu_user_seconds_total \S+$/m);
      expect(t).toMatch(/^nodejs_heap_size_total_bytes \S+$/m);
      expect(t).toMatch(/^signal_circuit_open\{integration="int_busy"\} 0$/m);
      expect(t).toMatch(/^signal_integration_info\{integration="int_idle",name="Idle"\} 1$/m);
    }

    const health = u1.replace('/metrics', '/healthz');
    const ready = u1.replace('/metrics', '/readyz');
    expect((await fetch(health)).status).toBe(200);
    const r0 = await fetch(ready);
    expect(r0.status).toBe(200);
    expect(await r0.json()).toEqual({ ready: true, checks: { draining: true, redis: true, records: true } });

    // Redis frozen: not ready (the ping times out), still healthy.
    process.kill(redis.pid, 'SIGSTOP');
    try {
      const frozen = await fetch(ready);
      expect(frozen.status).toBe(503);
      expect(((await frozen.json()) as { checks: { redis: string } }).checks.redis).toMatch(/unreachable/);
      expect((await fetch(health)).status).toBe(200);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await until('ready again', 10_000, async () => ((await fetch(ready)).status === 200 ? true : undefined));

    // Draining: 503 while deliveries finish, so a load balancer stops routing.
    emu.setFaults({ slow: 1, slow_ms: 3_000, apply_to: ['events'] });
    w2.child.kill('SIGTERM');
    await w2.exited;
    expect((await cli(['enqueue', '--redis', redis.url, '--integration', busy, '--events', events('evt_drain', 4)])).code).toBe(0);
    await until('deliveries in flight', 10_000, async () => ((await status()).in_flight > 0 ? true : undefined));
    w1.child.kill('SIGTERM');
    const draining = await until('a 503 while draining', 5_000, async () => {
      const r = await fetch(ready).catch(() => undefined);
      return r?.status === 503 ? r : undefined;
    });
    expect(((await draining.json()) as { checks: { draining: string } }).checks.draining).toMatch(/draining/);
    expect(await w1.exited).toBe(0);
    emu.setFaults({});
  });
});
