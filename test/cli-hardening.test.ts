/**
 * `deliver` hardened, through the built CLI as a subprocess against the emulator (real HTTP on loopback):
 * a dead-letter write error, resuming after kill -9, text output a value cannot forge, dead letters that
 * keep the original bytes, and --concurrency above the connection pool.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { jsonLines, runCli, startCli, summaryOf } from './helpers/cli-process.js';
import { leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';

let emu: Emulator;
let dir: string;
let record: string;

const ev = (id: string, overrides: Json = {}): Json => ({ ...leadSubmitted(), event_id: id, ...overrides });
const noEmail = (id: string): Json => {
  const e = ev(id);
  delete e.properties.email;
  return e;
};
const write = (name: string, content: string | Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

beforeAll(async () => {
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'si-cli-hard-'));
  record = write('record.json', JSON.stringify(referenceRecord()));
});
afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  emu.setFaults({});
  emu.reset();
});

describe('a dead-letter write error (issue 8.3)', () => {
  it.runIf(existsSync('/dev/full'))('--dead-letter /dev/full: stops reading, says so, exits 2, and the summary accounts for every line read', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify(i % 3 === 2 ? noEmail(`evt_full_${i + 1}`) : ev(`evt_full_${i + 1}`)));
    const events = write('full.ndjson', lines.join('\n') + '\n');
    const r = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json', '--dead-letter', '/dev/full']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: writing dead letters to \/dev\/full failed: no space left on device \(ENOSPC\); reading stopped\. (\d+) failed lines? ha(?:s|ve) no dead letter/m);
    const s = summaryOf(r.err);
    expect(s.read).toBeGreaterThan(0);
    expect(s.read).toBeLessThan(3000); // stopped reading
    expect(s.delivered + s.skipped + s.failed).toBe(s.read);
    expect(s.dead).toBe(0);
    const missing = Number(/(\d+) failed lines? ha(?:s|ve) no dead letter/.exec(r.err)![1]);
    expect(missing).toBe(s.failed); // every failure is accounted for as not dead-lettered
    const outcomes = jsonLines(r.out);
    expect(outcomes.map((o) => o.line).sort((a, b) => a - b)).toEqual(Array.from({ length: s.read }, (_, i) => i + 1));
    expect(r.err).toMatch(new RegExp(`stopped reading after line ${s.read};`));
    expect(r.err).toMatch(/to resume once dead letters can be written: the same command with --from-line \d+/);
    expect(r.err).not.toMatch(/\n\s+at .+[:(]/); // no stack
  });
});

describe('text output a value cannot forge (issue 8.11)', () => {
  it('deliver: an event_id with a newline or escape sequence prints as one escaped line; file names too', async () => {
    const forged = 'evt_a\nline 99  evt_fake  delivered  eventInstanceId=forged';
    const events = write('forge.ndjson', [JSON.stringify(ev(forged)), JSON.stringify(noEmail('evt_b\r\u001b[2K\u202e')), '{"type":"track","event":"x","event_id":"evt_c\\u0085\\u2028"}'].join('\n') + '\n');
    const dead = join(dir, 'dead\nsummary: 0 lines read: 9 delivered.ndjson');
    const r = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--dead-letter', dead]);
    expect(r.code).toBe(1);
    const outLines = r.out.split('\n').filter(Boolean);
    expect(outLines).toHaveLength(3);
    for (const l of outLines) expect(l).toMatch(/^line [123] {2}/);
    expect(r.out).not.toMatch(/^line 99/m);
    expect(r.out).toContain('evt_a\\nline 99  evt_fake');
    expect(r.out).toContain('evt_b\\r\\u001b[2K\\u202e');
    expect(r.out + r.err).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
    expect(r.err.split('\n').filter((l) => l.startsWith('summary:'))).toHaveLength(1);
    expect(r.err).toContain('dead\\nsummary: 0 lines read');
    // JSON output stays JSON: the id as it is.
    const j = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json']);
    expect(jsonLines(j.out).map((o) => o.event_id)).toContain(forged);
  });

  it('validate and preview text output escape what specs and events hold', async () => {
    const specs = join(dir, 'forge-specs');
    mkdirSync(specs, { recursive: true });
    writeFileSync(join(specs, 'forge.yaml'), 'spec_version: 1\nvendor: forge_vendor\ntitle: Forge\nversion: 1.0.0\n"bad\\e[31m\\nok: 9 spec files valid": true\n');
    const v = await runCli(['validate', specs]);
    expect(v.code).toBe(1);
    expect(v.out).not.toMatch(/^ok:/m);
    expect(v.out).toContain('\\u001b[31m\\nok: 9 spec files valid');
    expect(v.out).not.toContain('\u001b');

    const event = write('forge-event.json', JSON.stringify(ev('evt_p', { properties: { ...leadSubmitted().properties, first_name: 'Ja\u2028ne\u202e' } })));
    const p = await runCli(['preview', '--integration', record, '--event', event]);
    expect(p.code).toBe(0);
    expect(p.out).not.toMatch(/[\u2028\u202e]/);
    expect(p.out).toContain('"first_name": "Ja\\u2028ne\\u202e"');
  });
});

describe('mock: what a client sends cannot forge the request log (issue 8.11)', () => {
  it('a body with a newline and an escape sequence prints as one escaped line', async () => {
    const child = startCli(['mock', '--port', '0']);
    await child.waitFor((out) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out));
    const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.out())![1]!;
    await fetch(`${url}/interaction/v1/events`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x\n#99 POST /interaction/v1/events forged \u001b[31m' });
    await child.waitFor((out) => /^#1 POST/m.test(out));
    child.proc.kill('SIGTERM');
    expect(await child.exit).toBe(0);
    expect(child.out()).not.toMatch(/^#99/m);
    expect(child.out()).toContain('x\\n#99 POST /interaction/v1/events forged \\u001b[31m');
    expect(child.out()).not.toContain('\u001b');
  });
});

describe('dead letters keep the input (issue 8.12)', () => {
  it('an over-long line and invalid UTF-8 read from stdin are kept byte for byte; past the cap, the line is named; fed back, they are checked again', async () => {
    const big = JSON.stringify(ev('evt_big', { properties: { ...leadSubmitted().properties, note: 'x'.repeat(5000) } }));
    const badUtf8 = Buffer.concat([Buffer.from('{"type":"track","event":"Lead Submitted","event_id":"evt_utf8","properties":{"email":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}}')]);
    const huge = 'y'.repeat(5 * 1024 * 1024 + 10); // over the 4 MiB keep cap
    const input = Buffer.concat([JSON.stringify(ev('evt_ok')), '\n', big, '\n', badUtf8, '\n', huge, '\n', '{not json', '\n'].map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
    const dl = join(dir, 'keep-dl.ndjson');
    rmSync(dl, { force: true });
    const r = await runCli(['deliver', '--integration', record, '--events', '-', '--endpoint', emu.url, '--json', '--max-line-bytes', '2048', '--dead-letter', dl], { input });
    expect(r.code).toBe(1);
    expect(summaryOf(r.err)).toMatchObject({ read: 5, delivered: 1, failed: 4, dead: 4 });
    const dead = new Map(jsonLines(readFileSync(dl, 'utf8')).map((d) => [d.dead_letter.line as number, d]));
    expect(dead.get(2)).toMatchObject({ raw_line: big, raw_line_bytes: Buffer.byteLength(big) });
    expect(dead.get(2)!.dead_letter.message).toMatch(/^line 2: line is \d+ bytes, over the limit of 2048 bytes/);
    expect(dead.get(3)!.raw_line).toBeNull();
    expect(Buffer.from(dead.get(3)!.raw_line_base64, 'base64').equals(badUtf8)).toBe(true);
    expect(dead.get(4)).toMatchObject({ raw_line: null, raw_line_bytes: huge.length });
    expect(dead.get(4)!.raw_line_base64).toBeUndefined();
    expect(dead.get(4)!.dead_letter.message).toMatch(/too long to keep in the dead letter \(over 4194304 bytes\): take it from line 4 of the input/);
    expect(dead.get(5)).toMatchObject({ raw_line: '{not json' });

    // Fed back with a higher limit: the long event is now delivered; the others fail again, keeping the same bytes.
    emu.reset();
    const dl2 = join(dir, 'keep-dl2.ndjson');
    rmSync(dl2, { force: true });
    const again = await runCli(['deliver', '--integration', record, '--events', dl, '--endpoint', emu.url, '--json', '--max-line-bytes', '8192', '--dead-letter', dl2]);
    expect(again.code).toBe(1);
    expect(summaryOf(again.err)).toMatchObject({ read: 4, delivered: 1, failed: 3, dead: 3 });
    expect(emu.events().map((e) => (e.Data as Json).email)).toEqual(['jane.doe@example.com']);
    const outcomes = jsonLines(again.out);
    expect(outcomes.find((o) => o.event_id === 'evt_big')).toMatchObject({ status: 'delivered' });
    const dead2 = jsonLines(readFileSync(dl2, 'utf8'));
    expect(dead2).toHaveLength(3);
    const utf8 = dead2.find((d) => d.raw_line_base64 !== undefined)!;
    expect(utf8.dead_letter.message).toMatch(/not valid UTF-8/);
    expect(Buffer.from(utf8.raw_line_base64, 'base64').equals(badUtf8)).toBe(true); // not nested in another envelope
    expect(dead2.find((d) => d.raw_line === '{not json')!.dead_letter.message).toMatch(/not valid JSON/);
    expect(dead2.find((d) => /without its original line/.test(d.dead_letter.message))!.dead_letter.message).toMatch(/it was line 4, 5242890 bytes/);
  });
});

describe('--concurrency above the connection pool (issue 8.14)', () => {
  it('says so and raises the pool: more than 128 connections are open at once', async () => {
    // A TCP pass-through in front of the emulator that counts open connections.
    let open = 0;
    let peak = 0;
    const target = new URL(emu.url);
    const proxy: Server = createServer((client) => {
      open++;
      peak = Math.max(peak, open);
      const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
      client.pipe(upstream).pipe(client);
      const done = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.once('close', () => {
        open--;
        done();
      });
      upstream.once('close', done);
      client.on('error', done);
      upstream.on('error', done);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as { port: number }).port;
    try {
      emu.setFaults({ slow: 1, slow_ms: 600, apply_to: ['events'] });
      const events = write('wide.ndjson', Array.from({ length: 300 }, (_, i) => JSON.stringify(ev(`evt_w_${i}`))).join('\n') + '\n');
      const r = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', `http://127.0.0.1:${port}`, '--json', '--concurrency', '200']);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/^note: --concurrency 200 is above the default pool of 128 connections per host: the pool is raised to 200$/m);
      expect(summaryOf(r.err)).toMatchObject({ read: 300, delivered: 300 });
      console.log(`--concurrency 200: peak ${peak} connections open at once`);
      expect(peak).toBeGreaterThan(128);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});

describe('resume after kill -9 (issue 8.7)', () => {
  it('--checkpoint: a killed run resumes with the same command; every line ends with one outcome except a bounded in-flight window, re-sent and flagged', async () => {
    const N = 400;
    const CONCURRENCY = 8;
    const lines: string[] = [];
    for (let i = 1; i <= N; i++) {
      if (i % 40 === 0) lines.push('');
      else if (i % 25 === 0) lines.push('{broken');
      else if (i % 10 === 0) lines.push(JSON.stringify(noEmail(`evt_k_${i}`)));
      else lines.push(JSON.stringify(ev(`evt_k_${i}`, { user_id: `line-${i}` }))); // the payload's user_id names the line
    }
    const events = write('kill.ndjson', lines.join('\n') + '\n');
    const dl = join(dir, 'kill-dl.ndjson');
    const cpFile = join(dir, 'kill.checkpoint.json');
    rmSync(dl, { force: true });
    rmSync(cpFile, { force: true });
    const args = ['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json', '--concurrency', String(CONCURRENCY), '--dead-letter', dl, '--checkpoint', cpFile];

    // Run 1: slow answers, killed with SIGKILL once 100 outcomes are out.
    emu.setFaults({ slow: 1, slow_ms: 150, apply_to: ['events'] });
    const first = startCli(args);
    await first.waitFor((out) => out.split('\n').length > 100);
    first.proc.kill('SIGKILL');
    expect(await first.exit).toBe('SIGKILL');
    const cp1 = JSON.parse(readFileSync(cpFile, 'utf8')) as { done_through: number; done_after: [number, number][]; sent_before: number; complete: boolean };
    expect(cp1.complete).toBe(false);
    const doneAfter1 = new Set(cp1.done_after.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k)));
    // The window: lines the killed run may have sent without a recorded outcome.
    const window = new Set<number>();
    for (let l = cp1.done_through + 1; l < cp1.sent_before; l++) if (!doneAfter1.has(l)) window.add(l);
    expect(window.size).toBeLessThanOrEqual(4 * CONCURRENCY + 1); // the documented bound
    // Complete lines only: the kill may cut the last one.
    const out1 = jsonLines(first.out().slice(0, first.out().lastIndexOf('\n') + 1));
    const lineOf = (q: { body: string }): number => Number(/^line-(\d+)$/.exec((JSON.parse(q.body) as Json).Data.user_id)![1]);
    const sendsRun1 = emu.requests.filter((q) => q.path === '/interaction/v1/events').map(lineOf);
    // Some of the window was really in flight: the vendor has it, the killed run printed no outcome for it.
    expect(sendsRun1.filter((l) => window.has(l)).length).toBeGreaterThan(0);

    // Run 2: the same command resumes.
    emu.setFaults({});
    const second = await runCli(args);
    expect(second.code).toBe(1); // the events without an email and the broken lines fail
    expect(second.err).toMatch(new RegExp(`^resuming from checkpoint .*kill\\.checkpoint\\.json: lines through ${cp1.done_through} `, 'm'));
    const out2 = jsonLines(second.out);

    const count = new Map<number, number>();
    for (const o of [...out1, ...out2]) count.set(o.line, (count.get(o.line) ?? 0) + 1);
    const twice: number[] = [];
    for (let l = 1; l <= N; l++) {
      const c = count.get(l) ?? 0;
      expect(c, `line ${l}`).toBeGreaterThanOrEqual(1);
      if (c > 1) twice.push(l);
      if (!window.has(l)) expect(c, `line ${l} (outside the window)`).toBe(1);
    }
    for (const l of twice) expect(window.has(l)).toBe(true);
    // Re-sent lines whose fate was unknown carry the flag; no line outside the window does.
    for (const o of out2) {
      if (window.has(o.line) && o.attempts > 0) expect(o.possibly_duplicated, `line ${o.line}`).toBe(true);
      if (!window.has(o.line)) expect(o.possibly_duplicated ?? false, `line ${o.line}`).toBe(false);
    }
    // The vendor got each event once, except (at most) those of the window.
    const sends = emu.requests.filter((q) => q.path === '/interaction/v1/events').map(lineOf);
    expect(sends.length).toBeGreaterThan(sendsRun1.length);
    const perLine = new Map<number, number>();
    for (const l of sends) perLine.set(l, (perLine.get(l) ?? 0) + 1);
    for (const [l, n] of perLine) if (!window.has(l)) expect(n, `sends of line ${l}`).toBe(1);
    const resent = [...perLine].filter(([, n]) => n > 1).map(([l]) => l);
    // Dead letters: one per finally failed line outside the window, written by whichever run failed it.
    const dead = jsonLines(readFileSync(dl, 'utf8'));
    const deadLines = dead.map((d) => d.dead_letter.line as number);
    for (const o of [...out1, ...out2].filter((x) => x.status === 'failed' && !window.has(x.line))) {
      expect(deadLines.filter((l) => l === o.line), `dead letters of line ${o.line}`).toHaveLength(1);
    }
    const cp2 = JSON.parse(readFileSync(cpFile, 'utf8')) as { done_through: number; complete: boolean };
    expect(cp2).toMatchObject({ done_through: N, complete: true });

    // Run 3: nothing left; the checkpoint passes over everything and sends nothing.
    const reqs = emu.requests.length;
    const third = await runCli(args);
    expect(third.code).toBe(0);
    expect(summaryOf(third.err)).toMatchObject({ read: 0 });
    expect(third.err).toMatch(new RegExp(`resumed: ${N} lines passed over`));
    expect(emu.requests.length).toBe(reqs);
    console.log(`kill -9 after ${out1.length} outcomes: checkpoint done_through ${cp1.done_through}, ${doneAfter1.size} above, sent_before ${cp1.sent_before}; window ${window.size} lines, ${resent.length} sent twice (flagged), ${twice.length} with two outcomes`);
  });

  it('--from-line N starts there; a checkpoint of another run is refused', async () => {
    const events = write('from.ndjson', Array.from({ length: 6 }, (_, i) => JSON.stringify(ev(`evt_f_${i + 1}`))).join('\n') + '\n');
    const r = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json', '--from-line', '4']);
    expect(r.code).toBe(0);
    expect(jsonLines(r.out).map((o) => o.line).sort()).toEqual([4, 5, 6]);
    expect(summaryOf(r.err)).toMatchObject({ read: 3, delivered: 3 });
    expect(r.err).toMatch(/^starting at line 4 \(--from-line\)/m);
    expect(emu.events()).toHaveLength(3);

    const cpFile = join(dir, 'other.checkpoint.json');
    rmSync(cpFile, { force: true });
    expect((await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--checkpoint', cpFile])).code).toBe(0);
    // Complete; lines appended later are the only ones a rerun delivers, and nothing is flagged.
    writeFileSync(events, readFileSync(events, 'utf8') + JSON.stringify(ev('evt_f_7')) + '\n' + JSON.stringify(ev('evt_f_8')) + '\n');
    const appended = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json', '--checkpoint', cpFile]);
    expect(appended.code).toBe(0);
    expect(jsonLines(appended.out).map((o) => [o.line, o.possibly_duplicated ?? false]).sort()).toEqual([[7, false], [8, false]]);
    expect(appended.err).toMatch(/resumed: 6 lines passed over/);
    const other = write('other.ndjson', JSON.stringify(ev('evt_o')) + '\n');
    const refused = await runCli(['deliver', '--integration', record, '--events', other, '--endpoint', emu.url, '--checkpoint', cpFile]);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/^error: checkpoint '.*other\.checkpoint\.json' belongs to another run \(events '.*from\.ndjson'/m);
    write('garbage.checkpoint.json', '{"done_through": "x"}');
    const garbage = await runCli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--checkpoint', join(dir, 'garbage.checkpoint.json')]);
    expect(garbage.code).toBe(2);
    expect(garbage.err).toMatch(/is not a deliver checkpoint/);
  });
});
