/**
 * Issue 17 §1 against a real Redis, real worker processes and the emulator: `worker --trace` records each
 * attempt of a failed event and `trace --event-id` shows its input, the redacted token and send requests,
 * each HTTP attempt with its status, the vendor's answer and the hint — with no secret or token in the
 * output or in Redis, sealed or not; `tap` follows outcomes from two workers as they settle and ends
 * cleanly on SIGINT.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import type { StoredTrace } from '../engine/index.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { startCli, type Child } from './helpers/cli-process.js';

let redis: RedisServer;
let dir: string;
const children: Child[] = [];
const emus: Emulator[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'signal-trace-'));
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  for (const e of emus) await e.close();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

function events(ids: string[]): string {
  return ids.map((id) => JSON.stringify({ ...leadSubmitted(), event_id: id })).join('\n') + '\n';
}

function cli(args: string[], env: Record<string, string> = {}): Child {
  const c = startCli(args, { env });
  children.push(c);
  return c;
}

/** Two records for the tap tests, each delivering at most once: `a` is accepted, `b`'s journey key is unknown (refused). */
function tapRecords(tag: string, bName: string): { fa: string; fb: string } {
  const once = { retry: { max_attempts: 1, queue: { max_attempts: 1 } } };
  const a = { ...referenceRecord(), id: `int_${tag}_a`, name: `${tag} A`, ...once };
  const b = { ...referenceRecord(), id: `int_${tag}_b`, name: bName, ...once, config: { ...referenceRecord().config, event_definition_key: 'unknown_key' } };
  return { fa: file(`${tag}-a.json`, JSON.stringify(a)), fb: file(`${tag}-b.json`, JSON.stringify(b)) };
}

/** Resolves once `tap` says it is tapping (it reads from that moment on). */
function tapping(t: Child): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const check = setInterval(() => {
      if (t.err().includes('tapping')) (clearInterval(check), resolve());
      if (t.proc.exitCode !== null) (clearInterval(check), reject(new Error(t.err())));
    }, 50);
  });
}

async function done(args: string[], env: Record<string, string> = {}): Promise<{ code: number | NodeJS.Signals; out: string; err: string }> {
  const c = cli(args, env);
  const code = await c.exit;
  return { code, out: c.out(), err: c.err() };
}

const STORE_KEY = 'a'.repeat(64);

describe('worker --trace and trace --event-id', () => {
  for (const sealed of [false, true]) {
    it(`shows a failed event's input, redacted requests, attempts, answers and hint${sealed ? ' (sealed at rest)' : ''}`, async () => {
      // Every send gets a 500 half the time (seeded), and the journey key is unknown: the vendor refuses with 400 in the end.
      const emu = await startMarketingCloudEmulator({ event_definition_keys: ['some_other_journey'], faults: { server_error: 0.6, seed: 7, apply_to: ['events'] } });
      emus.push(emu);
      const prefix = sealed ? 'sealed:' : 'plain:';
      const id = sealed ? 'int_trace_sealed' : 'int_trace';
      const record = { ...referenceRecord(), id, name: 'Traced', retry: { max_attempts: 3, queue: { max_attempts: 2, backoff_ms: 50 } } };
      const secret = String(referenceRecord().config.client_secret);
      const recordFile = file(`${id}.json`, JSON.stringify(record));
      const env: Record<string, string> = sealed ? { SIGNAL_STORE_KEY: STORE_KEY } : {};
      const enq = await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', recordFile, '--events', file(`${id}.ndjson`, events(['evt_traced_1']))]);
      expect(enq.code, enq.err).toBe(0);
      const w = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', recordFile, '--endpoint', emu.url, '--trace', '--retry-backoff', '50'], env);
      await w.waitFor((out) => out.includes('dead_lettered'));
      w.proc.kill('SIGTERM');
      expect(await w.exit).toBe(0);

      const token = (JSON.parse(emu.tokenRequests()[0]!.response_body) as { access_token: string }).access_token;
      expect(token.length).toBeGreaterThan(8);
      const sendStatuses = emu.requests.filter((r) => r.host_kind === 'rest').map((r) => r.status);
      expect(sendStatuses.at(-1)).toBe(400);

      const text = await done(['trace', '--redis', redis.url, '--key-prefix', prefix, '--event-id', 'evt_traced_1'], env);
      expect(text.code, text.err).toBe(0);
      const json = await done(['trace', '--redis', redis.url, '--key-prefix', prefix, '--event-id', 'evt_traced_1', '--integration', id, '--json'], env);
      expect(json.code, json.err).toBe(0);
      const traces = json.out.trim().split('\n').map((l) => JSON.parse(l) as StoredTrace);
      expect(traces).toHaveLength(1);
      const t = traces[0]!;
      expect(t).toMatchObject({ integration_id: id, event_id: 'evt_traced_1', attempt: 1, disposition: 'dead_lettered' });
      // The input event.
      expect((t.trace.event as { event_id: string }).event_id).toBe('evt_traced_1');
      // The token request and the send, as sent, credentials redacted.
      const auth = t.trace.requests.find((r) => r.stage.startsWith('auth'))!;
      expect(auth.body).toContain('[redacted]');
      const send = t.trace.requests.find((r) => r.stage === 'send')!;
      expect(send.method).toBe('POST');
      expect(send.headers['Authorization'] ?? send.headers['authorization']).toBe('[redacted]');
      expect(send.body).toContain('"ContactKey":"jane.doe@example.com"');
      // Every HTTP attempt of the send with its status, the vendor's answers, retry decisions, and the end.
      const sends = t.trace.attempts.filter((a) => a.stage === 'send');
      expect(sends.map((a) => a.status)).toEqual(sendStatuses);
      for (const a of sends.slice(0, -1)) expect(a.decision?.action).toBe('retry');
      expect(sends.at(-1)!.decision?.action).toBe('stop');
      expect(sends.at(-1)!.response).toContain('EventDefinitionKey');
      expect(t.trace.attempts.some((a) => a.stage.startsWith('auth') && a.status === 200)).toBe(true);
      expect(t.trace.outcome).toMatchObject({ status: 'failed', reason: 'http_error', http_status: 400 });
      expect(t.trace.outcome.hint).toContain('event_definition_key');
      // The text view says the same for a person.
      expect(text.out).toContain('input: {');
      expect(text.out).toMatch(/http send: HTTP 400 .*→ stop/);
      expect(text.out).toContain('answer: ');
      expect(text.out).toContain('hint: Journey is not triggered');
      expect(text.out).toContain('then: dead_lettered');
      if (sendStatuses.includes(500)) expect(text.out).toMatch(/http send: HTTP 500 .*→ retry/);

      // Never a secret or a token: not in the output, not in Redis.
      const r = new Redis(redis.url);
      try {
        const keys = await r.keys(`${prefix}{${id}}:trace*`);
        expect(keys.length).toBeGreaterThan(0);
        let raw = '';
        for (const k of keys) raw += (await r.type(k)) === 'list' ? (await r.lrange(k, 0, -1)).join('\n') : '';
        expect(raw.length).toBeGreaterThan(0);
        for (const s of [secret, token]) {
          expect(raw).not.toContain(s);
          expect(text.out + json.out + text.err + w.out() + w.err()).not.toContain(s);
        }
        if (sealed) expect(raw).not.toContain('evt_traced_1'); // sealed: not even the event readable at rest
        else expect(raw).toContain('evt_traced_1');
        expect(await r.ttl(keys[0]!)).toBeGreaterThan(0);
      } finally {
        r.disconnect();
      }
      if (sealed) {
        const without = await done(['trace', '--redis', redis.url, '--key-prefix', prefix, '--event-id', 'evt_traced_1']);
        expect(without.code).toBe(2);
        expect(without.err).toContain('SIGNAL_STORE_KEY');
      }
      // Not found: exit 1; no Redis: exit 2.
      expect((await done(['trace', '--redis', redis.url, '--key-prefix', prefix, '--event-id', 'evt_never'], env)).code).toBe(1);
      expect((await done(['trace', '--redis', 'redis://127.0.0.1:1', '--event-id', 'evt_traced_1'])).code).toBe(2);
    });
  }
});

describe('tap', () => {
  it('prints outcomes from two workers as they settle, filters by status, and ends on SIGINT with exit 0', async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const prefix = 'tap:';
    const { fa, fb } = tapRecords('tap', 'Tap B\u001b[2J');
    const all = cli(['tap', '--redis', redis.url, '--key-prefix', prefix]);
    const failed = cli(['tap', '--redis', redis.url, '--key-prefix', prefix, '--status', 'failed', '--json']);
    for (const t of [all, failed]) await tapping(t);
    const w1 = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--endpoint', emu.url]);
    const w2 = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', fb, '--endpoint', emu.url]);
    expect((await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--events', file('tap-a.ndjson', events(['evt_tap_a1', 'evt_tap_a2']))])).code).toBe(0);
    expect((await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', fb, '--events', file('tap-b.ndjson', events(['evt_tap_b1\nforged line']))])).code).toBe(0);
    await all.waitFor((out) => out.split('\n').filter(Boolean).length >= 3);
    await failed.waitFor((out) => out.includes('evt_tap_b1'));
    const lines = all.out().split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    expect(lines.filter((l) => l.includes('int_tap_a') && l.includes('delivered'))).toHaveLength(2);
    const bLine = lines.find((l) => l.includes('int_tap_b'))!;
    expect(bLine).toContain('failed');
    expect(bLine).toContain('dead_lettered');
    expect(bLine).toContain('evt_tap_b1\\nforged line'); // escaped: one line, never a forged one
    expect(bLine).toContain('hint: Journey is not triggered');
    const f = failed.out().trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; status: string; integration_id: string });
    expect(f).toEqual([expect.objectContaining({ event_id: 'evt_tap_b1\nforged line', status: 'failed', integration_id: 'int_tap_b' })]);
    for (const t of [all, failed]) {
      t.proc.kill('SIGINT');
      expect(await t.exit).toBe(0);
    }
    for (const w of [w1, w2]) {
      w.proc.kill('SIGTERM');
      expect(await w.exit).toBe(0);
    }
    const secret = String(referenceRecord().config.client_secret);
    expect(all.out() + all.err() + failed.out()).not.toContain(secret);
  });
});

describe('tap --trace', () => {
  it("prints each settled outcome with its attempt's trace, from two workers, as text and JSON", async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const prefix = 'taptrace:';
    const { fa, fb } = tapRecords('tt', 'TT B');
    const text = cli(['tap', '--redis', redis.url, '--key-prefix', prefix, '--trace']);
    const failed = cli(['tap', '--redis', redis.url, '--key-prefix', prefix, '--trace', '--status', 'failed', '--json']);
    for (const t of [text, failed]) await tapping(t);
    const w1 = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--endpoint', emu.url, '--trace']);
    const w2 = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', fb, '--endpoint', emu.url, '--trace']);
    expect((await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--events', file('tt-a.ndjson', events(['evt_tt_a1']))])).code).toBe(0);
    expect((await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', fb, '--events', file('tt-b.ndjson', events(['evt_tt_b1']))])).code).toBe(0);
    await text.waitFor((out) => out.includes('then: dead_lettered') && out.includes('then: delivered'));
    await failed.waitFor((out) => out.includes('evt_tt_b1'));
    // Text: each outcome line, then its trace — input, the send as sent, the HTTP attempt, the outcome.
    const out = text.out();
    const aAt = out.indexOf('int_tt_a  evt_tt_a1');
    const bAt = out.indexOf('int_tt_b  evt_tt_b1');
    expect(aAt).toBeGreaterThanOrEqual(0);
    expect(bAt).toBeGreaterThanOrEqual(0);
    const block = (from: number) => out.slice(from, out.indexOf('then: ', from) + 30);
    expect(block(aAt)).toContain('input: {');
    expect(block(aAt)).toContain('request send: POST ');
    expect(block(aAt)).toMatch(/http send: HTTP 20\d/);
    expect(block(aAt)).toContain('then: delivered');
    expect(block(bAt)).toMatch(/http send: HTTP 400 .*→ stop/);
    expect(block(bAt)).toContain('hint: Journey is not triggered');
    expect(block(bAt)).toContain('then: dead_lettered');
    // JSON: the outcome with its trace; only the failed one (the filter still applies).
    const f = failed.out().trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; integration_id: string; trace: StoredTrace['trace'] | null; trace_worker: string });
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ event_id: 'evt_tt_b1', integration_id: 'int_tt_b' });
    expect(f[0]!.trace!.requests.map((r) => r.stage)).toContain('send');
    expect(f[0]!.trace!.attempts.at(-1)).toMatchObject({ stage: 'send', status: 400 });
    expect(f[0]!.trace!.outcome).toMatchObject({ status: 'failed', http_status: 400 });
    expect(typeof f[0]!.trace_worker).toBe('string');
    for (const t of [text, failed]) {
      t.proc.kill('SIGINT');
      expect(await t.exit).toBe(0);
    }
    for (const w of [w1, w2]) {
      w.proc.kill('SIGTERM');
      expect(await w.exit).toBe(0);
    }
    const token = (JSON.parse(emu.tokenRequests()[0]!.response_body) as { access_token: string }).access_token;
    for (const s of [String(referenceRecord().config.client_secret), token]) expect(text.out() + text.err() + failed.out()).not.toContain(s);
  });

  it('says when no trace was stored (workers without --trace)', async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const prefix = 'taptrace-none:';
    const a = { ...referenceRecord(), id: 'int_tt_none', name: 'TT none' };
    const fa = file('tt-none.json', JSON.stringify(a));
    const tap = cli(['tap', '--redis', redis.url, '--key-prefix', prefix, '--trace']);
    await tapping(tap);
    const w = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--endpoint', emu.url]);
    expect((await done(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', fa, '--events', file('tt-none.ndjson', events(['evt_tt_n1']))])).code).toBe(0);
    await tap.waitFor((out) => out.includes('no trace stored'));
    expect(tap.out()).toMatch(/int_tt_none  evt_tt_n1  Lead Submitted  delivered .*\n {2}\(no trace stored for this attempt: run the workers with --trace\)/);
    tap.proc.kill('SIGINT');
    expect(await tap.exit).toBe(0);
    w.proc.kill('SIGTERM');
    expect(await w.exit).toBe(0);
  });
});

describe('deliver --trace', () => {
  it('writes one redacted trace per event as NDJSON', async () => {
    const { run } = await import('../cli/run.js');
    const { PassThrough } = await import('node:stream');
    const { readFileSync } = await import('node:fs');
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['some_other_journey'] });
    emus.push(emu);
    const recordFile = file('deliver-trace.json', JSON.stringify({ ...referenceRecord(), retry: { max_attempts: 1 } }));
    const out = join(dir, 'traces.ndjson');
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let printed = '';
    stdout.on('data', (d: Buffer) => (printed += d.toString()));
    stderr.on('data', (d: Buffer) => (printed += d.toString()));
    const code = await run(['deliver', '--integration', recordFile, '--events', file('deliver-trace.ndjson', events(['evt_dt_1', 'evt_dt_2'])), '--endpoint', emu.url, '--trace', out], { stdout, stderr });
    expect(code).toBe(1);
    const text = readFileSync(out, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { line: number; integration_id: string; trace: StoredTrace['trace'] });
    expect(lines.map((l) => l.line).sort()).toEqual([1, 2]);
    for (const l of lines) {
      expect(l.integration_id).toBe('int_welcome_journey');
      expect(l.trace.requests.map((r) => r.stage)).toContain('send');
      expect(l.trace.attempts.at(-1)).toMatchObject({ stage: 'send', status: 400 });
      expect(l.trace.outcome.hint).toContain('event_definition_key');
    }
    const token = (JSON.parse(emu.tokenRequests()[0]!.response_body) as { access_token: string }).access_token;
    for (const s of [String(referenceRecord().config.client_secret), token]) expect(text + printed).not.toContain(s);
  });
});
