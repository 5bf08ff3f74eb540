/**
 * The pins beside the specs (specs/tests/**): every one holds, and the runner says what differs when
 * one does not, and `--update` rewrites only the expectation.
 */
import { copyFile, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinFiles, runPin } from '../cli/pins.js';
import { parse } from 'yaml';
import { BUNDLED_SPECS_DIR, Engine, packagePath } from '../engine/index.js';
import { REFERENCE_PAYLOAD } from './helpers/fixtures.js';

let engine: Engine;
beforeAll(async () => {
  engine = await Engine.load();
});
afterAll(() => engine.close());

const files = await pinFiles([join(BUNDLED_SPECS_DIR, 'tests')]);

describe('pins beside the specs', () => {
  it('exist for every bundled spec', () => {
    for (const vendor of engine.specs.keys()) expect(files.some((f) => f.includes(`/tests/${vendor}/`))).toBe(true);
  });

  for (const file of files) {
    it(file.slice(file.indexOf('/tests/') + 1), async () => {
      const r = await runPin(engine, file);
      expect(r.problems).toEqual([]);
      expect(r.ok).toBe(true);
    });
  }

  it("pin the reference's payload exactly", async () => {
    const pin = parse(await readFile(join(BUNDLED_SPECS_DIR, 'tests', 'salesforce_marketing_cloud', 'lead_submitted_reference.yaml'), 'utf8')) as { requests: { body: unknown }[] };
    // Stored as a YAML structure; compared as compact JSON, keys in order: the reference's bytes.
    expect(typeof pin.requests[1]!.body).toBe('object');
    expect(JSON.stringify(pin.requests[1]!.body)).toBe(REFERENCE_PAYLOAD);
  });

  it("inline the reference's record and event exactly as examples/ holds them (so pins work installed)", async () => {
    const pin = parse(await readFile(join(BUNDLED_SPECS_DIR, 'tests', 'salesforce_marketing_cloud', 'lead_submitted_reference.yaml'), 'utf8')) as Record<string, unknown>;
    const example = async (f: string): Promise<unknown> => JSON.parse(await readFile(packagePath('examples', f), 'utf8'));
    expect(pin.record).toEqual(await example('integration.json'));
    expect(pin.event).toEqual(await example('lead-submitted.json'));
    for (const file of files) expect(await readFile(file, 'utf8')).not.toMatch(/\.\.\/examples\//);
  });
});

describe('the pin runner', () => {
  async function copyPin(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'pins-'));
    const file = join(dir, 'pin.yaml');
    await copyFile(join(BUNDLED_SPECS_DIR, 'tests', 'salesforce_marketing_cloud', 'identified.yaml'), file);
    // Point the record at the shipped example from the temp dir.
    const text = (await readFile(file, 'utf8')).replace('record: ../../../examples/integration.json', `record: ${join(BUNDLED_SPECS_DIR, '..', 'examples', 'integration.json')}`);
    await writeFile(file, text);
    return file;
  }

  it('names the request and field that differ', async () => {
    const file = await copyPin();
    await writeFile(file, (await readFile(file, 'utf8')).replace('first_name: Sam\n', 'first_name: Samuel\n').replace('interaction/v1/events', 'interaction/v1/event'));
    const r = await runPin(engine, file);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'request 2 url: expected "https://mc-abc123xyz.rest.marketingcloudapis.com/interaction/v1/event", got "https://mc-abc123xyz.rest.marketingcloudapis.com/interaction/v1/events"',
      'request 2 (send) body.Data.first_name: expected "Samuel", got "Sam"',
    ]);
  });

  it('a body with the same keys in another order differs (bytes on the wire are pinned)', async () => {
    const file = await copyPin();
    const text = await readFile(file, 'utf8');
    const block = /^ {8}first_name: Sam\n {8}last_name: Patel\n/m;
    expect(text).toMatch(block);
    await writeFile(file, text.replace(block, '        last_name: Patel\n        first_name: Sam\n'));
    expect((await runPin(engine, file)).problems).toEqual([expect.stringMatching(/^request 2 \(send\) body.Data: keys in another order: expected email, last_name, first_name/)]);
  });

  it('freezes the clock: $now() gives the pin clock (default or its own `clock`), the same on every run', async () => {
    const file = await copyPin();
    const text = (await readFile(file, 'utf8')).replace(/^record:\n/m, 'record:\n  field_mappings: { Data.sent_at: $now() }\n');
    await writeFile(file, text.slice(0, text.indexOf('requests:')));
    expect((await runPin(engine, file, { update: true })).updated).toBe(true);
    expect(await readFile(file, 'utf8')).toContain('sent_at: 2026-01-01T00:00:00.000Z');
    expect((await runPin(engine, file)).ok).toBe(true);
    await writeFile(file, `clock: 2030-05-06T07:08:09.000Z\n${await readFile(file, 'utf8')}`);
    expect((await runPin(engine, file)).problems).toEqual(['request 2 (send) body.Data.sent_at: expected "2026-01-01T00:00:00.000Z", got "2030-05-06T07:08:09.000Z"']);
  });

  it('pin a skip: not_sent {reason: event_not_forwarded} holds where deliver skips so; a pin of requests names the skip; --update writes it', async () => {
    const file = await copyPin();
    const text = await readFile(file, 'utf8');
    const page = text.slice(0, text.indexOf('requests:')).replace(/event: Identified/, 'event: Page Viewed');
    expect(page).toContain('event: Page Viewed');
    await writeFile(file, `${page}not_sent:\n  reason: event_not_forwarded\n`);
    expect(await runPin(engine, file)).toMatchObject({ ok: true, problems: [] });
    await writeFile(file, `${page}not_sent:\n  reason: check_failed\n`);
    expect((await runPin(engine, file)).problems).toEqual(['not sent: expected reason check_failed, got event_not_forwarded']);
    await writeFile(file, text.replace(/event: Identified/, 'event: Page Viewed'));
    expect((await runPin(engine, file)).problems).toEqual([expect.stringMatching(/^expected requests, but the event is not sent: event_not_forwarded: 'Page Viewed' is not an event/)]);
    expect((await runPin(engine, file, { update: true })).updated).toBe(true);
    expect(parse(await readFile(file, 'utf8'))).toMatchObject({ not_sent: { reason: 'event_not_forwarded' } });
  });

  it('--update rewrites the expectation and keeps comments, description, record and event', async () => {
    const file = await copyPin();
    const before = await readFile(file, 'utf8');
    await writeFile(file, `# my comment\n${before.slice(0, before.indexOf('requests:'))}`);
    expect((await runPin(engine, file)).problems).toEqual([expect.stringMatching(/no expectation/)]);
    expect((await runPin(engine, file, { update: true })).updated).toBe(true);
    const after = await readFile(file, 'utf8');
    expect(after.startsWith('# my comment\n')).toBe(true);
    expect(after).toContain('description: an identify call');
    expect((await runPin(engine, file)).ok).toBe(true);
  });
});
