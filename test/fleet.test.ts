/**
 * The delivery fleet end to end: a real Redis, three real `worker` processes, the emulator with faults,
 * and one worker killed with SIGKILL mid-run. Every event must end exactly once (delivered or
 * dead-lettered), a duplicate at the vendor only where the outcome says possibly duplicated, and nothing
 * may be left on the queue.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, type QueueStatus, type RedisQueue } from '../engine/index.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const EVENTS = 10_000;
/** Every 100th event has no email: refused by the spec's ContactKey check, dead-lettered at once. */
const permanent = (i: number) => i % 100 === 0;

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'signal-fleet-'));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, stderr: () => err };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('fleet: 3 workers, 10,000 events, faults, one worker killed with SIGKILL', () => {
  it('ends every event exactly once, duplicates only where flagged, nothing left pending', { timeout: 240_000 }, async () => {
    emu = await startMarketingCloudEmulator({
      faults: {
        seed: 9,
        rate_limit_with_retry_after: 0.02,
        retry_after_seconds: 1,
        rate_limit_blocked: 0.02,
        server_error: 0.04,
        unavailable: 0.04,
        reset_before_record: 0.015,
        reset_after_record: 0.015,
        apply_to: ['events'],
      },
    });
    // Two HTTP attempts per queue attempt (in-process, short), two queue attempts 100 ms apart.
    const record: Record<string, any> = { ...referenceRecord(), retry: { max_attempts: 2, max_elapsed_ms: 5_000, queue: { max_attempts: 2, backoff_ms: 100 } } };
    const recordFile = join(dir, 'record.json');
    writeFileSync(recordFile, JSON.stringify(record));
    const lines: string[] = [];
    for (let i = 0; i < EVENTS; i++) {
      const e = leadSubmitted();
      e.event_id = `evt_fleet_${i}`;
      e.properties = { ...e.properties, email: permanent(i) ? undefined : `u${i}@example.com` };
      lines.push(JSON.stringify(e));
    }
    const eventsFile = join(dir, 'events.ndjson');
    writeFileSync(eventsFile, lines.join('\n') + '\n');

    const queue: RedisQueue = await createRedisQueue({ url: redis.url });
    const name = record.id as string;
    try {
      const started = Date.now();
      const enq = spawn(process.execPath, [CLI, 'enqueue', '--redis', redis.url, '--integration', recordFile, '--events', eventsFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let enqOut = '';
      enq.stdout!.on('data', (d: Buffer) => (enqOut += d.toString()));
      expect(await new Promise((r) => enq.once('exit', r))).toBe(0);
      expect(enqOut).toContain(`enqueued ${EVENTS} events`);

      const args = ['--redis', redis.url, '--integration', recordFile, '--endpoint', emu.url, '--concurrency', '64', '--visibility-timeout', '2', '--log-level', 'warn', '--json'];
      const workers = [startWorker(args), startWorker(args), startWorker(args)];
      const victim = workers[0]!;

      // Kill one worker mid-run, while it holds leases.
      await until('a quarter of the events delivered', 60_000, async () => ((await queue.status(name)).delivered >= EVENTS / 4 ? true : undefined));
      const holding = async () => {
        const summary = (await redisCall(['XPENDING', `signal:{${name}}:stream`, 'workers'])) as [number, string, string, [string, string][] | null];
        return (summary[3] ?? []).find(([consumer]) => consumer.includes(`:${victim.child.pid}:`))?.[1];
      };
      victim.child.kill('SIGKILL');
      await victim.exited;
      const heldAtDeath = Number((await holding()) ?? 0);
      expect(heldAtDeath).toBeGreaterThan(0);

      const final = await until('every event settled', 180_000, async () => {
        const s = await queue.status(name);
        return s.delivered + s.dead_lettered === EVENTS && s.waiting === 0 && s.in_flight === 0 && s.scheduled_retry === 0 ? s : undefined;
      });
      const elapsed = Date.now() - started;

      // The two survivors drain and exit 0 on SIGTERM.
      for (const w of workers.slice(1)) w.child.kill('SIGTERM');
      for (const w of workers.slice(1)) expect(await w.exited, w.stderr()).toBe(0);

      // The dead worker's leases were all taken over.
      expect(Number((await holding()) ?? 0)).toBe(0);
      const status: QueueStatus = await queue.status(name);
      expect(status).toMatchObject({ waiting: 0, in_flight: 0, scheduled_retry: 0, enqueued: EVENTS, skipped: 0 });
      expect(status.delivered + status.dead_lettered).toBe(EVENTS);
      expect(final.dead_lettered).toBeGreaterThanOrEqual(EVENTS / 100);

      // Exactly one final outcome per event, from the published outcome stream.
      const finals = new Map<string, { disposition: string; possibly_duplicated?: boolean; reason?: string }>();
      let duplicatesOfFinal = 0;
      for (const o of await readOutcomes(`signal:{${name}}:outcomes`)) {
        if (o.disposition === 'retry_scheduled') continue;
        if (finals.has(o.event_id)) duplicatesOfFinal++;
        finals.set(o.event_id, o);
      }
      expect(duplicatesOfFinal).toBe(0);
      expect(finals.size).toBe(EVENTS);
      for (let i = 0; i < EVENTS; i++) {
        const o = finals.get(`evt_fleet_${i}`);
        expect(o, `evt_fleet_${i}`).toBeDefined();
        if (permanent(i)) expect(o).toMatchObject({ disposition: 'dead_lettered', reason: 'check_failed' });
      }
      expect([...finals.values()].filter((o) => o.disposition === 'delivered').length).toBe(status.delivered);

      // At the vendor: every delivered event arrived; more than once only when flagged possibly duplicated.
      const seen = new Map<string, number>();
      for (const e of emu.events()) seen.set(e.ContactKey, (seen.get(e.ContactKey) ?? 0) + 1);
      let vendorDuplicates = 0;
      let flagged = 0;
      for (let i = 0; i < EVENTS; i++) {
        const o = finals.get(`evt_fleet_${i}`)!;
        const n = seen.get(`u${i}@example.com`) ?? 0;
        if (o.possibly_duplicated) flagged++;
        if (o.disposition === 'delivered') expect(n, `evt_fleet_${i} at the vendor`).toBeGreaterThanOrEqual(1);
        if (n > 1) {
          vendorDuplicates++;
          expect(o.possibly_duplicated, `evt_fleet_${i} reached the vendor ${n} times`).toBe(true);
        }
      }

      // Dead letters: one per dead-lettered event, each with its attempts' history.
      const dead = (await queue.deadLetters(name)).map((l) => JSON.parse(l) as { dead_letter: { attempts: number; history: unknown[]; reason: string; hint: string | null }; event: { event_id: string } });
      expect(dead.length).toBe(status.dead_lettered);
      for (const d of dead) {
        expect(d.dead_letter.history.length).toBe(d.dead_letter.attempts);
        expect(finals.get(d.event.event_id)?.disposition).toBe('dead_lettered');
      }
      const check = dead.find((d) => d.dead_letter.reason === 'check_failed')!;
      expect(check.dead_letter.hint).toMatch(/ContactKey/);
      console.info(
        `fleet: ${EVENTS} events in ${(elapsed / 1000).toFixed(1)} s with 3 workers (one SIGKILLed holding ${heldAtDeath} leases): ` +
          `${status.delivered} delivered, ${status.dead_lettered} dead-lettered, ${status.failed} failed attempts, ` +
          `${vendorDuplicates} duplicates at the vendor, ${flagged} flagged possibly duplicated`,
      );
    } finally {
      await queue.close();
    }
  });
});

async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(redis.url);
  try {
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

function redisCall(args: string[]): Promise<unknown> {
  return withRedis((r) => r.call(args[0]!, ...args.slice(1)));
}

async function readOutcomes(key: string): Promise<{ event_id: string; disposition: string; possibly_duplicated?: boolean; reason?: string }[]> {
  return withRedis(async (r) => {
    const out: { event_id: string; disposition: string }[] = [];
    let start = '-';
    for (;;) {
      const page = await r.xrange(key, start, '+', 'COUNT', 5000);
      for (const [, fields] of page) out.push(JSON.parse(fields[1]!));
      if (page.length < 5000) break;
      start = `(${page[page.length - 1]![0]}`;
    }
    return out;
  });
}
