/**
 * Issue 9, shared state across real processes: three `deliver --redis` runs of the built CLI, started
 * together against one in-process emulator and one real redis-server. One token request per credential
 * key per token lifetime, the fleet recovering together from a revoked token, and one rate limit shared by
 * all three.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator, type RecordedRequest } from '../emulator/marketing-cloud.js';
import { event, referenceRecord, type Json } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';

const MAIN = new URL('../dist/cli/main.js', import.meta.url).pathname;
const EVENTS_PATH = '/interaction/v1/events';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
let runN = 0;

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-fleet-state-'));
});
// Each test starts with no token anywhere: an empty Redis and a fresh emulator recording.
beforeEach(async () => {
  const client = new Redis(redis.url);
  await client.flushall();
  client.disconnect();
  emu.reset();
});
afterAll(async () => {
  await emu?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | string;
  outcomes: Json[];
  stderr: string;
}

/** Start `processes` deliver runs at once, each with its share of `events`, and wait for all of them. */
async function fleet(processes: number, events: Json[], record: Json, opts: { concurrency: number; env?: Record<string, string> }): Promise<Run[]> {
  const n = ++runN;
  const recordFile = join(dir, `record-${n}.json`);
  writeFileSync(recordFile, JSON.stringify(record));
  const runs = Array.from({ length: processes }, (_, p) => {
    const file = join(dir, `events-${n}-${p}.ndjson`);
    writeFileSync(file, events.filter((_, i) => i % processes === p).map((e) => JSON.stringify(e)).join('\n') + '\n');
    const args = ['deliver', '--integration', recordFile, '--events', file, '--endpoint', emu.url, '--redis', redis.url, '--json', '--concurrency', String(opts.concurrency)];
    const proc = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    proc.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 55_000); // bounded, whatever happens
    return new Promise<Run>((resolve) =>
      proc.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? signal ?? -1, outcomes: out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Json), stderr: err });
      }),
    );
  });
  return Promise.all(runs);
}

const sends = (rs: RecordedRequest[]) => rs.filter((r) => r.path === EVENTS_PATH);

describe('a fleet of 3 deliver processes sharing Redis', () => {
  it('1,000 events in flight across 3 processes: one token request for the whole fleet', async () => {
    const events = Array.from({ length: 1000 }, () => event());
    const runs = await fleet(3, events, referenceRecord(), { concurrency: 400 });
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const outcomes = runs.flatMap((r) => r.outcomes);
    expect(outcomes).toHaveLength(1000);
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(emu.events()).toHaveLength(1000);
    expect(emu.tokenRequests()).toHaveLength(1);
    expect(runs.every((r) => /shared through Redis/.test(r.stderr))).toBe(true);
    console.log(`fleet token test: ${emu.tokenRequests().length} token request(s) for 1000 events across 3 processes`);
  });

  it('a revoked token mid-run: the fleet recovers together with exactly one new token request', async () => {
    const events = Array.from({ length: 3000 }, () => event());
    let revokedAt = -1;
    const watch = setInterval(() => {
      if (revokedAt < 0 && emu.events().length >= 600) {
        revokedAt = emu.events().length;
        emu.revokeTokens();
      }
    }, 5);
    let runs: Run[];
    try {
      runs = await fleet(3, events, referenceRecord(), { concurrency: 64 });
    } finally {
      clearInterval(watch);
    }
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const outcomes = runs.flatMap((r) => r.outcomes);
    expect(outcomes).toHaveLength(3000);
    expect(outcomes.filter((o) => o.status !== 'delivered')).toEqual([]);
    expect(revokedAt).toBeGreaterThan(0);
    expect(revokedAt).toBeLessThan(3000); // revoked mid-run, not after
    expect(emu.stats.unauthorized).toBeGreaterThan(0);
    expect(emu.tokenRequests()).toHaveLength(2); // one per token lifetime: the first, and one after the revocation
    const tokens = new Set(sends(emu.requests).filter((r) => r.status === 201).map((r) => String(r.headers['authorization'])));
    expect(tokens.size).toBe(2);
    // Every process met the revoked token (so each recovered through the shared store, not its own fetch).
    const processesThatMet401 = runs.filter((r) => r.outcomes.some((o) => (o.attempts as number) > 1)).length;
    console.log(`fleet revocation test: revoked after ${revokedAt} events, ${emu.stats.unauthorized} 401s, ${emu.tokenRequests().length} token requests, ${processesThatMet401} of 3 processes retried after a 401`);
  });

  it('a shared limit of 600/min across 3 processes: within 10% of the limit, never above it by more than one second’s burst', async () => {
    const LIMIT_PER_S = 10; // 600/min
    const BURST = 10; // one second's worth
    const events = Array.from({ length: 180 }, () => event());
    const record = { ...referenceRecord(), rate_limit: { requests_per_minute: 600 } };
    const runs = await fleet(3, events, record, { concurrency: 16 });
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs.flatMap((r) => r.outcomes).every((o) => o.status === 'delivered')).toBe(true);
    // Every request counts against the limit: the token request and the sends.
    const at = emu.requests.map((r) => r.at).sort((a, b) => a - b);
    expect(at).toHaveLength(181);
    // Never above: any window [t_i, t_j] holds at most the burst + the limit × its length. The timestamps are
    // taken by the emulator once it has read a body, in this (busy) test process, so an arrival can trail the
    // slot Redis granted by a scheduling delay: 2 requests (200 ms at this rate) are allowed for that noise.
    const NOISE = 2;
    let worst = -Infinity;
    for (let i = 0; i < at.length; i++) {
      for (let j = i; j < at.length; j++) worst = Math.max(worst, j - i + 1 - (BURST + ((at[j]! - at[i]!) / 1000) * LIMIT_PER_S));
    }
    console.log(`fleet rate test: the worst window held ${worst.toFixed(2)} requests more than burst + limit × length`);
    expect(worst).toBeLessThanOrEqual(NOISE);
    // Within 10%: the rate after the initial burst, over the whole run (3 separate limits would give ~30/s).
    const rate = (at.length - BURST) / ((at.at(-1)! - at[0]!) / 1000);
    console.log(`fleet rate test: ${at.length} requests in ${((at.at(-1)! - at[0]!) / 1000).toFixed(2)} s, ${rate.toFixed(2)}/s after the burst (limit ${LIMIT_PER_S}/s)`);
    expect(rate).toBeLessThanOrEqual(LIMIT_PER_S * 1.1);
    expect(rate).toBeGreaterThanOrEqual(LIMIT_PER_S * 0.9);
  });
});
