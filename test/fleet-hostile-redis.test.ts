/**
 * The fleet against a Redis an operator cannot trust (issue 16 §4, items 1 and 2): a frozen Redis
 * (SIGSTOP: it keeps its connections and answers nothing) ends every command with one line and exit 2
 * instead of hanging it, and a worker started against it says it waits; a password given in any form
 * ioredis accepts is never printed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { MAIN, runCli, startCli } from './helpers/cli-process.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { until, writeIn } from './helpers/fleet.js';

let redis: RedisServer;
let emu: Emulator;
let dir: string;
const file = (name: string, content: unknown): string => writeIn(dir, name, content);

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'signal-fleet-hostile-'));
});

afterAll(async () => {
  process.kill(redis.pid, 'SIGCONT');
  await emu?.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function events(prefix: string, n: number): string {
  return Array.from({ length: n }, (_, i) => JSON.stringify({ ...leadSubmitted(), event_id: `${prefix}_${i}` })).join('\n') + '\n';
}

/** Freeze the test's Redis for the length of `body`; it is resumed whatever happens. */
async function frozen<T>(body: () => Promise<T>): Promise<T> {
  process.kill(redis.pid, 'SIGSTOP');
  try {
    return await body();
  } finally {
    process.kill(redis.pid, 'SIGCONT');
  }
}

describe('a frozen Redis (SIGSTOP)', () => {
  it('ends enqueue, status, dead-letters and replay with one line and exit 2 instead of hanging', { timeout: 90_000 }, async () => {
    const recordFile = file('frozen.json', JSON.stringify({ ...referenceRecord(), id: 'int_frozen' }));
    const eventsFile = file('frozen.ndjson', events('evt_fz', 3));
    const at = ['--redis', redis.url, '--integration', recordFile];
    const results = await frozen(() =>
      Promise.all([
        runCli(['enqueue', ...at, '--events', eventsFile]),
        runCli(['status', ...at, '--json']),
        runCli(['status', '--redis', redis.url]),
        runCli(['dead-letters', ...at]),
        runCli(['replay', ...at]),
      ]),
    );
    for (const r of results) {
      expect(r.code, r.err).toBe(2);
      expect(r.err.trim().split('\n')).toEqual([`error: Redis at ${redis.url} did not answer within 5 s (frozen or overloaded?)`]);
      expect(r.out).toBe('');
    }
  });

  it('ends enqueue with one line and exit 2 when Redis freezes after it connected', { timeout: 60_000 }, async () => {
    const recordFile = file('frozen-late.json', JSON.stringify({ ...referenceRecord(), id: 'int_frozen_late' }));
    const probe = new Redis(redis.url);
    // Clients that have had an answer from Redis (the connection's ready check, INFO, is the first command).
    const answered = async () => String(await probe.client('LIST')).trim().split('\n').filter((l) => / cmd=(?!NULL)/.test(l) && !l.includes(' cmd=client|list')).length;
    const before = await answered();
    const child = spawn(process.execPath, [MAIN, 'enqueue', '--redis', redis.url, '--integration', recordFile, '--events', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const exit = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    try {
      // Connected and answered (one more such client), waiting for its input: then Redis freezes, and the events come.
      await until('enqueue to connect', 20_000, async () => ((await answered()) > before ? true : undefined));
      const code = await frozen(async () => {
        child.stdin.end(events('evt_fz_late', 2));
        return exit;
      });
      expect(code, err).toBe(2);
      expect(err.trim().split('\n')).toEqual([`error: Redis at ${redis.url} stopped answering (no answer within 5 s; frozen or overloaded?)`]);
    } finally {
      child.kill('SIGKILL');
      probe.disconnect();
    }
  });

  it('a worker started against it logs that it waits, keeps waiting, and consumes once Redis answers', { timeout: 90_000 }, async () => {
    const recordFile = file('frozen-worker.json', JSON.stringify({ ...referenceRecord(), id: 'int_frozen_worker' }));
    const worker = startCli(['worker', '--redis', redis.url, '--integration', recordFile, '--endpoint', emu.url, '--visibility-timeout', '5']);
    try {
      await frozen(async () => {
        await until('the worker to say it waits', 30_000, () => (worker.err().includes('waiting for it') ? true : undefined));
        const line = worker
          .err()
          .split('\n')
          .find((l) => l.includes('waiting for it'))!;
        expect(JSON.parse(line)).toMatchObject({ level: 40, redis: redis.url, msg: expect.stringContaining('Redis accepts connections but does not answer') });
        expect(worker.proc.exitCode).toBeNull();
        expect(worker.err()).not.toContain('consuming');
      });
      // Redis is back: the worker starts and delivers.
      await until('the worker to consume', 30_000, () => (worker.err().includes('"consuming"') ? true : undefined));
      const enq = await runCli(['enqueue', '--redis', redis.url, '--integration', recordFile, '--events', file('fw.ndjson', events('evt_fw', 2))]);
      expect(enq.code, enq.err).toBe(0);
      await worker.waitFor((out) => out.split('\n').filter((l) => l.includes('delivered')).length === 2);
      worker.proc.kill('SIGTERM');
      expect(await worker.exit).toBe(0);
    } finally {
      worker.proc.kill('SIGKILL');
    }
  });
});

describe('Redis credentials in every form ioredis accepts are never printed', () => {
  it('masks ?password=, ?username=, user:pass@ in status, enqueue, errors and the worker log', { timeout: 180_000 }, async () => {
    // A Redis of its own with a password and an ACL user.
    const secured = await startRedis();
    const admin = new Redis(secured.url);
    await admin.acl('SETUSER', 'alice', 'on', '>alice-S3cret-pw', '~*', '&*', '+@all');
    await admin.config('SET', 'requirepass', 'default-S3cret-pw');
    admin.disconnect();
    const secrets = ['alice-S3cret-pw', 'default-S3cret-pw', 'alice'];
    const host = `127.0.0.1:${secured.port}`;
    const forms = [
      `redis://${host}/?password=default-S3cret-pw`,
      `redis://:default-S3cret-pw@${host}`,
      `redis://alice:alice-S3cret-pw@${host}`,
      `redis://${host}/?username=alice&password=alice-S3cret-pw`,
    ];
    const recordFile = file('masked.json', JSON.stringify({ ...referenceRecord(), id: 'int_masked' }));
    const clean = (text: string) => {
      for (const s of secrets) expect(text).not.toContain(s);
    };
    try {
      for (const url of forms) {
        const enq = await runCli(['enqueue', '--redis', url, '--integration', recordFile, '--events', file('m.ndjson', events('evt_m', 1))]);
        expect(enq.code, enq.err).toBe(0);
        const st = await runCli(['status', '--redis', url]);
        expect(st.code, st.err).toBe(0);
        expect(st.out).toContain('int_masked');
        clean(enq.out + enq.err + st.out + st.err);
        // The same forms at an address where nothing answers: the error names the URL, masked.
        const down = url.replace(host, '127.0.0.1:1');
        const commands = [['status'], ['enqueue', '--events', file('m2.ndjson', events('evt_m2', 1))], ['dead-letters'], ['replay']];
        for (const cmd of url === forms[0] ? commands : commands.slice(0, 1)) {
          const r = await runCli([...cmd, '--redis', down, '--integration', recordFile]);
          expect(r.code, r.err).toBe(2);
          expect(r.err).toContain('cannot reach Redis at redis://');
          clean(r.out + r.err);
        }
      }
      for (const url of [forms[0]!, forms[2]!, forms[3]!]) {
        const worker = startCli(['worker', '--redis', url, '--integration', recordFile, '--endpoint', emu.url]);
        try {
          await until('the consuming log line', 30_000, () => (worker.err().includes('"consuming"') ? true : undefined));
          worker.proc.kill('SIGTERM');
          expect(await worker.exit).toBe(0);
          expect(worker.err()).toMatch(/"redis":"redis:\/\/(\*\*\*:\*\*\*@|:\*\*\*@)?127\.0\.0\.1:\d+\/?(\?[a-z]+=\*\*\*(&[a-z]+=\*\*\*)*)?"/);
          clean(worker.out() + worker.err());
        } finally {
          worker.proc.kill('SIGKILL');
        }
      }
    } finally {
      await secured.stop();
    }
  });
});
