/**
 * The CLI in-process through `run(argv, io)`, against a real emulator on 127.0.0.1 (real HTTP, no mocks).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { run, type CliIO } from '../cli/run.js';
import { DEFAULT_EVENT_DEFINITION_KEYS, startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { REFERENCE_PAYLOAD, leadSubmitted, referenceRecord, type Json } from './helpers/fixtures.js';

const ROOT = new URL('..', import.meta.url).pathname;
const EXAMPLE_EVENTS = join(ROOT, 'examples', 'events.ndjson');
const SECRET = 'shh-secret-value';

interface Result {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], extra: Partial<CliIO> = {}): Promise<Result> {
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    ...extra,
  };
  const code = await run(args, io);
  return { code, out, err };
}

let emu: Emulator;
let dir: string;
const write = (name: string, content: string | Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const writeJson = (name: string, v: unknown): string => write(name, JSON.stringify(v, null, 2));
const ndjson = (events: unknown[]): string => events.map((e) => JSON.stringify(e)).join('\n') + '\n';
const ev = (id: string, overrides: Json = {}): Json => ({ ...leadSubmitted(), event_id: id, ...overrides });
const jsonLines = (text: string): Json[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Json);

/** Counts from the summary line: `summary: N lines read: a delivered, b skipped, c failed, d dead-lettered, e possibly duplicated`. */
function summary(err: string): { read: number; delivered: number; skipped: number; failed: number; dead: number } {
  const m = /summary: (\d+) lines? read: (\d+) delivered, (\d+) skipped, (\d+) failed, (\d+) dead-lettered/.exec(err);
  if (!m) throw new Error(`no summary in:\n${err}`);
  const [read, delivered, skipped, failed, dead] = m.slice(1).map(Number) as [number, number, number, number, number];
  return { read, delivered, skipped, failed, dead };
}

const noStack = (r: Result): void => {
  expect(r.err).not.toMatch(/\n\s+at .+[:(]/);
  expect(r.out).not.toMatch(/\n\s+at .+[:(]/);
};

beforeAll(async () => {
  emu = await startMarketingCloudEmulator();
  dir = mkdtempSync(join(tmpdir(), 'si-cli-'));
});
afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  emu.reset();
  emu.setEventDefinitionKeys(DEFAULT_EVENT_DEFINITION_KEYS);
});

describe('validate', () => {
  it('exits 0 for the bundled specs', async () => {
    const r = await cli(['validate']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: \d+ spec files? valid/m);
  });

  it('prints every problem as file:line:col and exits 1, with paths relative to the working directory', async () => {
    const specs = join(dir, 'broken-specs');
    mkdirSync(specs, { recursive: true });
    writeFileSync(join(specs, 'broken.yaml'), 'spec_version: 1\nvendor: broken_vendor\ntitle: Broken\nversion: 1.0.0\nbogus_key: true\n');
    writeFileSync(join(specs, 'unparsable.yaml'), 'spec_version: 1\nvendor: [unclosed\n');
    const r = await cli(['validate', 'broken-specs'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^broken-specs\/broken\.yaml:5:1: unknown key 'bogus_key' \(at bogus_key\)$/m);
    expect(r.out).toMatch(/^broken-specs\/unparsable\.yaml:\d+:\d+: YAML/m);
    expect(r.out).toMatch(/^invalid: \d+ problems in 2 files; 0 of 2 spec files valid$/m);
    // absolute paths outside the working directory stay absolute
    const abs = await cli(['validate', specs]);
    expect(abs.code).toBe(1);
    expect(abs.out).toContain(`${specs}/broken.yaml:5:1:`);
  });

  it('exits 1 when there is no spec to check', async () => {
    mkdirSync(join(dir, 'empty-specs'), { recursive: true });
    const r = await cli(['validate', join(dir, 'empty-specs')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: no spec files/);
  });
});

describe('preview', () => {
  it('prints each request as an HTTP message, secrets redacted', async () => {
    const record = writeJson('record.json', referenceRecord());
    const event = writeJson('event.json', leadSubmitted());
    const r = await cli(['preview', '--integration', record, '--event', event]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^# auth\.token\nPOST https:\/\/mc-abc123xyz\.auth\.marketingcloudapis\.com\/v2\/token\n/);
    expect(r.out).toContain('# send\nPOST https://mc-abc123xyz.rest.marketingcloudapis.com/interaction/v1/events\n');
    expect(r.out).toContain('Authorization: Bearer [redacted]');
    expect(r.out).toContain('"client_secret": "[redacted]"');
    expect(r.out).toContain(JSON.stringify(JSON.parse(REFERENCE_PAYLOAD), null, 2));
    expect(r.out + r.err).not.toContain(SECRET);
    expect(emu.requests).toHaveLength(0);
  });

  it('--json: the bodies exactly as on the wire', async () => {
    const record = writeJson('record.json', referenceRecord());
    const event = writeJson('event.json', leadSubmitted());
    const r = await cli(['preview', '--integration', record, '--event', event, '--json']);
    expect(r.code).toBe(0);
    const reqs = JSON.parse(r.out) as { stage: string; method: string; url: string; headers: Record<string, string>; body: string }[];
    expect(reqs.map((q) => q.stage)).toEqual(['auth.token', 'send']);
    expect(Object.keys(reqs[0]!)).toEqual(['stage', 'method', 'url', 'headers', 'body']);
    expect(JSON.parse(reqs[0]!.body).client_secret).toBe('[redacted]');
    expect(reqs[1]!.body).toBe(REFERENCE_PAYLOAD);
    expect(reqs[1]!.headers.Authorization).toBe('Bearer [redacted]');
    expect(r.out).not.toContain(SECRET);
  });

  it('--endpoint shows the routed URL and the original host', async () => {
    const record = writeJson('record.json', referenceRecord());
    const event = writeJson('event.json', leadSubmitted());
    const r = await cli(['preview', '--integration', record, '--event', event, '--json', '--endpoint', 'http://127.0.0.1:9090']);
    const reqs = JSON.parse(r.out) as { url: string; headers: Record<string, string> }[];
    expect(reqs[1]!.url).toBe('http://127.0.0.1:9090/interaction/v1/events');
    expect(reqs[1]!.headers['X-Forwarded-Host']).toBe('mc-abc123xyz.rest.marketingcloudapis.com');
  });

  it('an event that would fail its checks: exit 1 with the reason and hint', async () => {
    const record = writeJson('record.json', referenceRecord());
    const e = leadSubmitted();
    delete e.properties.email;
    const event = writeJson('no-email.json', e);
    const r = await cli(['preview', '--integration', record, '--event', event]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: the event would not be sent: check_failed: ContactKey/m);
    expect(r.err).toMatch(/^hint: Contact is not created/m);
  });

  it('an event deliver would skip (not forwarded): the skip reason, no request, exit 3; deliver skips it for the same reason', async () => {
    const record = writeJson('record.json', referenceRecord());
    const event = writeJson('page.json', { ...leadSubmitted(), type: 'page', event: 'Page Viewed', event_id: 'evt_page_1' });
    const r = await cli(['preview', '--integration', record, '--event', event]);
    expect(r.code).toBe(3);
    expect(r.out).toBe('');
    expect(r.err).toBe("skipped: event_not_forwarded: 'Page Viewed' is not an event this integration forwards (deliver would send nothing)\n");
    const j = await cli(['preview', '--integration', record, '--event', event, '--json']);
    expect([j.code, JSON.parse(j.out)]).toEqual([3, []]);
    const line = write('page.ndjson', JSON.stringify({ ...leadSubmitted(), type: 'page', event: 'Page Viewed', event_id: 'evt_page_1' }) + '\n');
    const d = await cli(['deliver', '--integration', record, '--events', line, '--json', '--endpoint', emu.url]);
    expect(JSON.parse(d.out.split('\n')[0]!)).toMatchObject({ status: 'skipped', reason: 'event_not_forwarded' });
    expect(emu.requests).toHaveLength(0);
  });
});

describe('deliver', () => {
  it('a pretty-printed JSON file or a JSON array of events: one message saying it is not NDJSON, exit 2, nothing sent', async () => {
    const record = writeJson('record.json', referenceRecord());
    const pretty = writeJson('pretty.json', leadSubmitted());
    const r = await cli(['deliver', '--integration', record, '--events', pretty, '--endpoint', emu.url]);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toEqual([
      expect.stringMatching(/^error: events file '.*pretty\.json' is one JSON document spread over \d+ lines, not one event per line \(NDJSON\): convert it to one event per line, e\.g\. jq -c '\.' .*pretty\.json > events\.ndjson$/),
    ]);
    const array = write('array.json', JSON.stringify([leadSubmitted(), leadSubmitted()]));
    const a = await cli(['deliver', '--integration', record, '--events', array, '--endpoint', emu.url]);
    expect(a.code).toBe(2);
    expect(a.err).toMatch(/^error: events file '.*array\.json' starts with a JSON array, not one event per line \(NDJSON\): .*jq -c '\.\[\]'/);
    const prettyArray = writeJson('pretty-array.json', [leadSubmitted()]);
    expect((await cli(['deliver', '--integration', record, '--events', prettyArray, '--endpoint', emu.url])).err).toMatch(/is one JSON array of 1 item spread over \d+ lines/);
    expect(emu.requests).toHaveLength(0);
  });

  it('--json: one outcome per line with event_id, status and line; exit 0 when nothing failed', async () => {
    const record = writeJson('record.json', referenceRecord());
    const events = write('good.ndjson', ndjson([ev('evt_g1'), ev('evt_g2'), ev('evt_g3', { type: 'identify', event: 'Identified' })]));
    const r = await cli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json']);
    expect(r.code).toBe(0);
    const outcomes = jsonLines(r.out);
    expect(outcomes).toHaveLength(3);
    for (const o of outcomes) {
      expect(Object.keys(o).slice(0, 3)).toEqual(['line', 'event_id', 'status']);
      expect(o.status).toBe('delivered');
      expect(o.response_id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(outcomes.map((o) => o.line).sort()).toEqual([1, 2, 3]);
    expect(outcomes.map((o) => o.event_id).sort()).toEqual(['evt_g1', 'evt_g2', 'evt_g3']);
    expect(emu.events()).toHaveLength(3);
    expect(summary(r.err)).toEqual({ read: 3, delivered: 3, skipped: 0, failed: 0, dead: 0 });
    expect(r.err).toMatch(/events\/s/);
    expect(r.err).toContain(`endpoint override (--endpoint, an explicit operator option): every request was sent to ${emu.url}`);
  });

  it('the example events: human output, counts that add up, exit 1 for the event without an email', async () => {
    const record = writeJson('record.json', referenceRecord());
    const r = await cli(['deliver', '--integration', record, '--events', EXAMPLE_EVENTS, '--endpoint', emu.url]);
    expect(r.code).toBe(1);
    const s = summary(r.err);
    expect(s).toEqual({ read: 6, delivered: 3, skipped: 2, failed: 1, dead: 0 });
    expect(s.delivered + s.skipped + s.failed).toBe(s.read);
    expect(r.out).toMatch(/^line 1 {2}evt_01J9Z6T0B3Q8 {2}delivered {2}eventInstanceId=[0-9a-f-]{36}/m);
    expect(r.out).toMatch(/^line 4 {2}evt_01J9Z6T3D8W1 {2}skipped {2}consent_not_granted/m);
    expect(r.out).toMatch(/^line 5 {2}evt_01J9Z6T4F2X6 {2}skipped {2}event_not_forwarded/m);
    expect(r.out).toMatch(/^line 6 {2}evt_01J9Z6T5H9Y3 {2}failed {2}check_failed .*hint: Contact is not created: confirm ContactKey is populated/m);
    expect(r.out.trim().split('\n')).toHaveLength(6);
    // the reference's Lead Submitted went out exactly as the reference prints it
    expect(emu.requests.find((q) => q.path === '/interaction/v1/events' && q.body === REFERENCE_PAYLOAD)).toBeDefined();
  });

  it('reads events from stdin as they arrive (--events -)', async () => {
    const stdin = new PassThrough();
    const record = writeJson('record.json', referenceRecord());
    const done = cli(['deliver', '--integration', record, '--events', '-', '--endpoint', emu.url, '--json'], { stdin });
    stdin.write(JSON.stringify(ev('evt_in1')) + '\n');
    await new Promise((r) => setTimeout(r, 50));
    stdin.write('\n' + JSON.stringify(ev('evt_in2')));
    stdin.end();
    const r = await done;
    expect(r.code).toBe(0);
    expect(summary(r.err)).toEqual({ read: 3, delivered: 2, skipped: 1, failed: 0, dead: 0 });
    expect(jsonLines(r.out).find((o) => o.line === 2)).toMatchObject({ status: 'skipped', reason: 'blank_line' });
  });

  it('--events -: a pretty-printed JSON document or array on stdin is reported once, nothing sent; NDJSON after a bad first line still streams', async () => {
    const record = writeJson('record.json', referenceRecord());
    const pretty = new PassThrough();
    pretty.end(JSON.stringify(leadSubmitted(), null, 2) + '\n');
    const r = await cli(['deliver', '--integration', record, '--events', '-', '--endpoint', emu.url], { stdin: pretty });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err.trim().split('\n')).toEqual([
      expect.stringMatching(/^error: standard input is one JSON document spread over \d+ lines, not one event per line \(NDJSON\): convert it to one event per line, e\.g\. pipe it through jq -c '\.'$/),
    ]);
    const array = new PassThrough();
    array.end(JSON.stringify([leadSubmitted(), leadSubmitted()], null, 2));
    const a = await cli(['deliver', '--integration', record, '--events', '-', '--endpoint', emu.url], { stdin: array });
    expect([a.code, a.err]).toEqual([2, expect.stringMatching(/standard input is one JSON array of 2 items spread over \d+ lines.*jq -c '\.\[\]'/)]);
    expect(emu.requests).toHaveLength(0);
    // A malformed first line that opens an object, then NDJSON: every line gets its outcome, none is lost.
    const mixed = new PassThrough();
    mixed.end('{"event": \n' + JSON.stringify(ev('evt_mx1')) + '\n' + JSON.stringify(ev('evt_mx2')) + '\n' + JSON.stringify(ev('evt_mx3')) + '\n');
    const m = await cli(['deliver', '--integration', record, '--events', '-', '--endpoint', emu.url, '--json'], { stdin: mixed });
    expect(summary(m.err)).toEqual({ read: 4, delivered: 3, skipped: 0, failed: 1, dead: 0 });
    expect(jsonLines(m.out).find((o) => o.line === 1)).toMatchObject({ status: 'failed', reason: 'invalid_event' });
  });

  it('writes failures to the dead-letter file; fed back once the cause is fixed, they are delivered', async () => {
    const record = referenceRecord();
    record.config.event_definition_key = 'journey_welcome_v2'; // not (yet) known to the tenant
    const recordFile = writeJson('record-v2.json', record);
    const events = write('dl-input.ndjson', ndjson([ev('evt_d1'), ev('evt_d2', { consent: { marketing: false } }), ev('evt_d3')]));
    const deadFile = join(dir, 'dead.ndjson');
    rmSync(deadFile, { force: true });
    const first = await cli(['deliver', '--integration', recordFile, '--events', events, '--endpoint', emu.url, '--json', '--dead-letter', deadFile]);
    expect(first.code).toBe(1);
    expect(summary(first.err)).toEqual({ read: 3, delivered: 0, skipped: 1, failed: 2, dead: 2 });
    expect(first.err).toMatch(/dead letters: 2 appended to .*dead\.ndjson/);
    const dead = jsonLines(readFileSync(deadFile, 'utf8'));
    expect(dead).toHaveLength(2);
    for (const d of dead) {
      expect(Object.keys(d)).toEqual(['dead_letter', 'event']);
      expect(d.dead_letter).toMatchObject({ reason: 'http_error', http_status: 400, attempts: 1, integration: record.name });
      expect(d.dead_letter.hint).toMatch(/Journey is not triggered/);
      expect(d.dead_letter.message).toEqual(expect.any(String));
      expect(new Date(d.dead_letter.failed_at).toString()).not.toBe('Invalid Date');
    }
    expect(dead.map((d) => d.dead_letter.line).sort()).toEqual([1, 3]);
    expect(dead.find((d) => d.dead_letter.line === 1)!.event).toEqual(ev('evt_d1'));

    // The journey is activated: feeding the dead letters back delivers them.
    emu.setEventDefinitionKeys([...DEFAULT_EVENT_DEFINITION_KEYS, 'journey_welcome_v2']);
    const retry = await cli(['deliver', '--integration', recordFile, '--events', deadFile, '--endpoint', emu.url, '--json', '--dead-letter', join(dir, 'dead2.ndjson')]);
    expect(retry.code).toBe(0);
    expect(summary(retry.err)).toEqual({ read: 2, delivered: 2, skipped: 0, failed: 0, dead: 0 });
    expect(emu.events().map((e) => JSON.stringify(e.Data)).every((d) => d.includes('jane.doe@example.com'))).toBe(true);
    expect(emu.events().map((e) => e.EventDefinitionKey)).toEqual(['journey_welcome_v2', 'journey_welcome_v2']);
  });

  it('refuses to append dead letters to the events file itself', async () => {
    const record = writeJson('record.json', referenceRecord());
    const events = write('same.ndjson', ndjson([ev('evt_s1')]));
    const r = await cli(['deliver', '--integration', record, '--events', events, '--dead-letter', events, '--endpoint', emu.url]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: --dead-letter .* is the events file/);
  });

  it('hostile input: one failed outcome per bad line, with its line number; good lines still delivered', async () => {
    const good = (id: string): string => JSON.stringify(ev(id));
    const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
    let deep = '1';
    for (let i = 0; i < 70; i++) deep = `[${deep}]`;
    const lines: Buffer[] = [
      enc(good('evt_h1')), // 1
      enc('{not json'), // 2
      enc('[1,2,3]'), // 3
      enc('{"type":"track","event":"Lead Submitted"}'), // 4: no event_id
      enc(JSON.stringify(ev('evt_big', { pad: 'x'.repeat(5000) }))), // 5: over --max-line-bytes
      enc(`{"type":"track","event":"Lead Submitted","event_id":"evt_deep","properties":{"x":${deep}}}`), // 6
      enc('{"__proto__":{"polluted":true},"type":"track","event":"Lead Submitted","event_id":"evt_proto"}'), // 7
      enc(JSON.stringify(ev('evt_ctor')).replace('"properties":{', '"properties":{"constructor":{"prototype":{"polluted":true}},')), // 8
      enc(JSON.stringify(ev('evt_proto2')).replace('"consent":{', '"consent":{"prototype":true,')), // 9
      enc(JSON.stringify(ev('evt_sur')).replace('"Jane"', '"Ja\\ud800ne"')), // 10: lone surrogate
      Buffer.concat([enc('{"type":"track","event":"Lead Submitted","event_id":"evt_utf8","properties":{"email":"'), Buffer.from([0xc3, 0x28, 0xff]), enc('"}}')]), // 11
      enc('   \t'), // 12: blank
      enc('null'), // 13
      enc('"just a string"'), // 14
      enc(good('evt_h2')), // 15
    ];
    const file = write('hostile.ndjson', Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])));
    const record = writeJson('record.json', referenceRecord());
    const deadFile = join(dir, 'hostile-dead.ndjson');
    rmSync(deadFile, { force: true });
    const r = await cli(['deliver', '--integration', record, '--events', file, '--endpoint', emu.url, '--json', '--max-line-bytes', '2048', '--dead-letter', deadFile]);
    expect(r.code).toBe(1);
    noStack(r);
    const outcomes = jsonLines(r.out);
    expect(outcomes).toHaveLength(15);
    const byLine = new Map(outcomes.map((o) => [o.line as number, o]));
    expect(byLine.get(1)).toMatchObject({ status: 'delivered', event_id: 'evt_h1' });
    expect(byLine.get(15)).toMatchObject({ status: 'delivered', event_id: 'evt_h2' });
    expect(byLine.get(12)).toMatchObject({ status: 'skipped', reason: 'blank_line' });
    const expectations: [number, RegExp][] = [
      [2, /not valid JSON/],
      [3, /must be a JSON object, got an array/],
      [4, /event_id is missing/],
      [5, /over the limit of 2048 bytes/],
      [6, /nesting deeper than 64 levels/],
      [7, /forbidden key '__proto__'/],
      [8, /forbidden key 'constructor' in properties/],
      [9, /forbidden key 'prototype' in consent/],
      [10, /string at properties\.first_name is not well-formed Unicode/],
      [11, /not valid UTF-8/],
      [13, /got null/],
      [14, /got string/],
    ];
    for (const [line, msg] of expectations) {
      const o = byLine.get(line)!;
      expect(o, `line ${line}`).toMatchObject({ status: 'failed', reason: 'invalid_event', retryable: false, attempts: 0 });
      expect(o.message, `line ${line}`).toMatch(new RegExp(`^line ${line}: `));
      expect(o.message, `line ${line}`).toMatch(msg);
    }
    expect(summary(r.err)).toEqual({ read: 15, delivered: 2, skipped: 1, failed: 12, dead: 12 });
    expect(({} as Json).polluted).toBeUndefined();
    expect(emu.events().map((e) => e.ContactKey)).toEqual(['jane.doe@example.com', 'jane.doe@example.com']);

    const dead = jsonLines(readFileSync(deadFile, 'utf8'));
    expect(dead).toHaveLength(12);
    const deadByLine = new Map(dead.map((d) => [d.dead_letter.line as number, d]));
    expect(deadByLine.get(2)).toEqual({ dead_letter: expect.objectContaining({ reason: 'invalid_event' }), raw_line: '{not json', raw_line_bytes: 9 });
    // Not UTF-8: kept byte for byte in base64, never decoded lossily.
    expect(deadByLine.get(11)!.raw_line).toBeNull();
    expect(Buffer.from(deadByLine.get(11)!.raw_line_base64, 'base64').equals(lines[10]!)).toBe(true);
    // Over --max-line-bytes but under the keep cap: kept as it was.
    expect(deadByLine.get(5)!.raw_line).toBe(lines[4]!.toString('utf8'));
    expect(deadByLine.get(4)!.raw_line).toBe('{"type":"track","event":"Lead Submitted"}');
  });

  it('a line without a final newline and CRLF line ends still count as lines', async () => {
    const record = writeJson('record.json', referenceRecord());
    const file = write('crlf.ndjson', `${JSON.stringify(ev('evt_c1'))}\r\n\r\n${JSON.stringify(ev('evt_c2'))}`);
    const r = await cli(['deliver', '--integration', record, '--events', file, '--endpoint', emu.url, '--json', '--concurrency', '1']);
    expect(r.code).toBe(0);
    expect(summary(r.err)).toEqual({ read: 3, delivered: 2, skipped: 1, failed: 0, dead: 0 });
  });
});

describe('usage and configuration errors: exit 2, one clear message, no stack', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['no command', () => [], /Usage: signal-integrations/],
    ['an unknown command', () => ['frobnicate'], /^error: unknown command 'frobnicate'/m],
    ['an unknown option', () => ['deliver', '--integration', 'r.json', '--events', 'e', '--bogus'], /^error: unknown option '--bogus'/m],
    ['a missing required option', () => ['deliver', '--events', 'x.ndjson'], /^error: required option '--integration <file>' not specified/m],
    ['a bad --concurrency', () => ['deliver', '--integration', 'r.json', '--events', 'e', '--concurrency', '0'], /^error: option '--concurrency <n>' argument '0' is invalid/m],
    ['a bad --max-line-bytes', () => ['deliver', '--integration', 'r.json', '--events', 'e', '--max-line-bytes', 'lots'], /--max-line-bytes/],
    ['a missing record file', () => ['deliver', '--integration', join(dir, 'nope.json'), '--events', EXAMPLE_EVENTS], /^error: cannot read integration record '.*nope\.json': file not found$/m],
    ['a missing events file', () => ['deliver', '--integration', join(dir, 'record.json'), '--events', join(dir, 'nope.ndjson')], /^error: cannot read events file '.*nope\.ndjson': file not found$/m],
    ['a missing event file', () => ['preview', '--integration', join(dir, 'record.json'), '--event', join(dir, 'nope.json')], /^error: cannot read event file/m],
    ['a directory as record', () => ['deliver', '--integration', dir, '--events', EXAMPLE_EVENTS], /is a directory/],
    ['a bad endpoint', () => ['deliver', '--integration', join(dir, 'record.json'), '--events', EXAMPLE_EVENTS, '--endpoint', 'ftp://example.com'], /^error: endpoint 'ftp:\/\/example\.com' must be an http\(s\) base URL/m],
    ['an endpoint that is not a URL', () => ['deliver', '--integration', join(dir, 'record.json'), '--events', EXAMPLE_EVENTS, '--endpoint', 'nowhere'], /^error: endpoint 'nowhere' is not a URL/m],
    ['a specs dir that does not exist', () => ['--specs', join(dir, 'no-specs'), 'deliver', '--integration', join(dir, 'record.json'), '--events', EXAMPLE_EVENTS], /^error: the integration specs are invalid/m],
    ['a broken specs dir', () => ['deliver', '--specs', join(dir, 'broken-specs'), '--integration', join(dir, 'record.json'), '--events', EXAMPLE_EVENTS], /^ {2}.*broken\.yaml:5:1: unknown key 'bogus_key'/m],
    ['stdin requested without one', () => ['deliver', '--integration', join(dir, 'record.json'), '--events', '-'], /^error: --events -: no standard input/m],
  ];

  beforeAll(() => {
    writeJson('record.json', referenceRecord());
    const specs = join(dir, 'broken-specs');
    mkdirSync(specs, { recursive: true });
    writeFileSync(join(specs, 'broken.yaml'), 'spec_version: 1\nvendor: broken_vendor\ntitle: Broken\nversion: 1.0.0\nbogus_key: true\n');
  });

  it.each(cases)('%s', async (_name, args, message) => {
    const r = await cli(args());
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    noStack(r);
    expect(emu.requests).toHaveLength(0);
  });

  it('an invalid record: every bad field by name, never a value', async () => {
    const record = referenceRecord();
    record.config.client_secret = 12345678;
    record.config.account_id = 'not-a-mid-SECRETISH';
    delete record.config.client_id;
    const file = writeJson('bad-record.json', record);
    const r = await cli(['deliver', '--integration', file, '--events', EXAMPLE_EVENTS, '--endpoint', emu.url]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: integration record 'Marketing Cloud — Welcome Journey' is invalid:/);
    expect(r.err).toMatch(/config\.client_id: is required/);
    expect(r.err).toMatch(/config\.client_secret: must be string/);
    expect(r.err).toMatch(/config\.account_id: must match pattern/);
    expect(r.err).not.toMatch(/12345678|SECRETISH/);
    noStack(r);
  });

  it('a record that is not JSON: the position, never the content', async () => {
    const file = write('not-json.json', `{\n  "config": { "client_secret": ${SECRET} }\n}`);
    const r = await cli(['preview', '--integration', file, '--event', EXAMPLE_EVENTS]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: integration record '.*not-json\.json' is not usable: not valid JSON/);
    expect(r.err).not.toContain(SECRET);
    expect(r.err).not.toContain('shh');
  });

  it('--help and --version exit 0', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/validate.*\n.*preview.*\n.*deliver.*\n.*mock.*\n.*demo/s);
    const deliverHelp = await cli(['deliver', '--help']);
    expect(deliverHelp.code).toBe(0);
    expect(deliverHelp.out).toContain('--dead-letter <file>');
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('demo', () => {
  it('delivers the example events through the example record against its own emulator, and exits 0', async () => {
    let demoEmu: Emulator | undefined;
    const r = await cli(['demo'], { hooks: { emulatorStarted: (e) => (demoEmu = e) } });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^line 1 {2}evt_01J9Z6T0B3Q8 {2}delivered/m);
    expect(r.out).toMatch(/^line 6 {2}evt_01J9Z6T5H9Y3 {2}failed {2}check_failed/m);
    expect(r.out).toContain('what the emulator received');
    expect(r.out).toContain(`→ 201 ${REFERENCE_PAYLOAD}`);
    expect(r.out).toMatch(/demo ok: 3 delivered, 2 skipped, 1 failed as expected/);
    expect(summary(r.err)).toMatchObject({ read: 6, delivered: 3, skipped: 2, failed: 1 });
    expect(demoEmu!.events()).toHaveLength(3);
  });
});

describe('secrets never reach any output', () => {
  it('validate, preview, deliver (with dead letters and a rejected secret), demo', async () => {
    const outputs: string[] = [];
    const emulators: Emulator[] = [emu];
    const keep = (r: Result): Result => (outputs.push(r.out, r.err), r);
    const recordFile = writeJson('s-record.json', referenceRecord());
    const eventFile = writeJson('s-event.json', leadSubmitted());
    keep(await cli(['validate']));
    keep(await cli(['preview', '--integration', recordFile, '--event', eventFile]));
    keep(await cli(['preview', '--integration', recordFile, '--event', eventFile, '--json', '--endpoint', emu.url]));
    // delivered, skipped, failed (check), failed (unknown journey), dead-lettered
    const deadFile = join(dir, 's-dead.ndjson');
    rmSync(deadFile, { force: true });
    const events = write('s-events.ndjson', readFileSync(EXAMPLE_EVENTS, 'utf8') + '{broken\n');
    expect(keep(await cli(['deliver', '--integration', recordFile, '--events', events, '--endpoint', emu.url, '--dead-letter', deadFile])).code).toBe(1);
    expect(keep(await cli(['deliver', '--integration', recordFile, '--events', events, '--endpoint', emu.url, '--json'])).code).toBe(1);
    const unknownJourney = referenceRecord();
    unknownJourney.config.event_definition_key = 'not_a_journey';
    const ujFile = writeJson('s-uj.json', unknownJourney);
    expect(keep(await cli(['deliver', '--integration', ujFile, '--events', events, '--endpoint', emu.url, '--dead-letter', deadFile, '--json'])).code).toBe(1);
    // a secret the tenant rejects: auth fails, the message is about it, the value is not in it
    const wrong = referenceRecord();
    wrong.config.client_secret = 'wrong-secret-value-0042';
    const wrongFile = writeJson('s-wrong.json', wrong);
    const rejected = keep(await cli(['deliver', '--integration', wrongFile, '--events', events, '--endpoint', emu.url, '--dead-letter', deadFile]));
    expect(rejected.code).toBe(1);
    expect(rejected.out).toMatch(/auth_failed/);
    keep(await cli(['demo'], { hooks: { emulatorStarted: (e) => emulators.push(e) } }));
    outputs.push(readFileSync(deadFile, 'utf8'));

    const tokens = emulators.flatMap((e) =>
      e.tokenRequests().flatMap((q) => {
        const t = (JSON.parse(q.response_body || '{}') as { access_token?: string }).access_token;
        return t ? [t] : [];
      }),
    );
    expect(tokens.length).toBeGreaterThanOrEqual(2);
    const secrets = [SECRET, 'wrong-secret-value-0042', ...tokens];
    const all = outputs.join('\n');
    expect(all).toContain('[redacted]');
    for (const s of secrets) expect(all).not.toContain(s);
    expect(all).not.toMatch(/eyJhbGciOi/); // the emulator's token prefix
  });
});

describe('deliver through a batching spec', () => {
  it('fills whole batches from a stream: 1,000 events in 10 requests plus the token', async () => {
    const events = write('batch.ndjson', ndjson(Array.from({ length: 1000 }, (_, i) => ev(`evt_b_${i}`))));
    const record = writeJson('batch-record.json', { ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch' });
    const r = await cli(['deliver', '--integration', record, '--events', events, '--endpoint', emu.url, '--json']);
    expect(r.code).toBe(0);
    expect(summary(r.err)).toMatchObject({ read: 1000, delivered: 1000 });
    expect(emu.requests.filter((q) => q.path === '/interaction/v1/async/events')).toHaveLength(10);
    expect(emu.tokenRequests()).toHaveLength(1);
  });
});

describe('test (pins)', () => {
  it('runs the pins beside the bundled specs: exit 0 and a count', async () => {
    const r = await cli(['test']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^\d+ passed, 0 failed$/m);
  });

  it('exits 1 and says what differs when a pin no longer holds', async () => {
    const pin = write(
      'stale-pin.yaml',
      `record: ${join(ROOT, 'examples', 'integration.json')}\nevent: ${join(ROOT, 'examples', 'lead-submitted.json')}\nnot_sent: { reason: check_failed }\n`,
    );
    const r = await cli(['test', pin]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL .*stale-pin.yaml\n\s+expected the event not to be sent \(check_failed\), but it produces 2 request/);
  });
});
