/**
 * A rejected item must never read as delivered (issue 7 §1): whatever a batch's `results` or `poll`
 * expressions yield that the language does not allow fails the whole batch, with the spec key named —
 * never a silent success. Specs written here, run against a local stub vendor over real HTTP.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine, type Integration, type Outcome } from '../engine/index.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';
import { event } from './helpers/fixtures.js';

const SPEC = (vendor: string, batch: string) => `
spec_version: 1
vendor: ${vendor}
title: Stub batch vendor
version: 1.0.0
config:
  type: object
  properties:
    list: { type: string, description: the list id }
allowed_hosts: [api.stub.example]
send:
  request:
    method: POST
    url: https://api.stub.example/batch
    headers: { Content-Type: application/json }
    body:
      id: event_id
  success: { status: [2xx] }
  batch:
    max_items: 10
    max_wait_ms: 0
    body:
      items: $items
${batch}
`;

// The one-element trap: \`results.item\` over one result yields the bare object, not a one-element array.
const RESULTS = `    results:
      items: results.item
      ok: ok = true
      message: error
`;
const RESULTS_FORCED = `    results:
      items: results.item[]
      ok: ok = true
      message: error
`;
const POLL = `    poll:
      status:
        method: GET
        url: https://api.stub.example/status
      done: done = true
      interval_ms: 10
      results:
        method: GET
        url: https://api.stub.example/results
      errors: errors
      index: i
      message: message
`;

let stub: StubVendor;
let engine: Engine;
beforeAll(async () => {
  stub = await startStubVendor();
  const dir = await mkdtemp(join(tmpdir(), 'batch-results-'));
  await writeFile(join(dir, 'results.yaml'), SPEC('stub_results', RESULTS));
  await writeFile(join(dir, 'forced.yaml'), SPEC('stub_forced', RESULTS_FORCED));
  await writeFile(join(dir, 'poll.yaml'), SPEC('stub_poll', POLL));
  engine = await Engine.load({ specs: dir, endpoint: stub.url, timeouts: { connect_ms: 2000, response_ms: 5000 } });
});
afterAll(async () => {
  engine.close();
  await stub.close();
});
beforeEach(() => stub.requests.splice(0));

const integration = (vendor: string): Integration => engine.createIntegration({ source_id: 'src_1', name: vendor, vendor, enabled: true, config: { list: 'l1' } });

describe('send.batch.results', () => {
  it('a one-element result that evaluates to an object fails the event, naming the key — never delivered', async () => {
    stub.answer('/batch', { status: 200, body: { results: [{ item: { ok: false, error: 'bad email' } }] } });
    const [o] = await integration('stub_results').deliverAll([event()]);
    expect(stub.requests.filter((r) => r.path === '/batch')).toHaveLength(1);
    expect(o).toMatchObject({
      status: 'failed',
      reason: 'batch_results_invalid',
      message: 'send.batch.results.items must evaluate to an array, got object',
      retryable: false,
      possibly_duplicated: true,
      http_status: 200,
      batch_size: 1,
    });
    expect(o!.hint).toContain('[]');
  });

  it('the same answer read with [] maps the one item: rejected as item_rejected', async () => {
    stub.answer('/batch', { status: 200, body: { results: [{ item: { ok: false, error: 'bad email' } }] } });
    const [o] = await integration('stub_forced').deliverAll([event()]);
    expect(o).toMatchObject({ status: 'failed', reason: 'item_rejected', message: 'bad email' });
  });

  it('with several results the path yields an array: per-item outcomes as before', async () => {
    stub.answer('/batch', { status: 200, body: { results: [{ item: { ok: true } }, { item: { ok: false, error: 'no' } }] } });
    const outcomes = await integration('stub_results').deliverAll([event(), event()]);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'failed']);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected', message: 'no' });
  });

  it('fewer results than items sent, or none at all: every event of the batch fails', async () => {
    stub.answer('/batch', { status: 200, body: { results: [{ item: { ok: true } }, { item: { ok: true } }] } });
    const short = await integration('stub_results').deliverAll([event(), event(), event()]);
    for (const o of short) {
      expect(o).toMatchObject({ status: 'failed', reason: 'batch_results_invalid', message: 'send.batch.results.items must have one entry per item sent (3), got 2' });
    }
    stub.answer('/batch', { status: 202, body: { accepted: true } });
    const none = await integration('stub_results').deliverAll([event(), event()]);
    for (const o of none) expect(o).toMatchObject({ status: 'failed', message: 'send.batch.results.items must evaluate to an array, got nothing' });
  });
});

describe('send.batch.poll', () => {
  const run = async (results: unknown, n: number): Promise<Outcome[]> => {
    stub.answer('/batch', { status: 202, body: { id: 'b1' } });
    stub.answer('/status', { status: 200, body: { done: true } });
    stub.answer('/results', { status: 200, body: results });
    return integration('stub_poll').deliverAll(Array.from({ length: n }, () => event()));
  };

  it('valid indexes fail exactly their items; an absent errors list means none were rejected', async () => {
    const outcomes = await run({ errors: [{ i: 1, message: 'duplicate key' }] }, 3);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'failed', 'delivered']);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected', message: 'duplicate key' });
    const clean = await run({}, 2);
    expect(clean.map((o) => o.status)).toEqual(['delivered', 'delivered']);
  });

  it('an index named more than once is one failure of that item, with every message (issue 18 §2)', async () => {
    const outcomes = await run({ errors: [{ i: 1, message: 'email is invalid' }, { i: 1, message: 'time is missing' }, { i: 1, message: 'email is invalid' }] }, 3);
    expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'failed', 'delivered']);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected', message: 'email is invalid; time is missing' });
  });

  const bad: [string, unknown, string][] = [
    ['errors that is one object', { errors: { i: 0, message: 'x' } }, 'send.batch.poll.errors must evaluate to an array, got object'],
    ['an index out of range', { errors: [{ i: 3 }] }, 'send.batch.poll.index 3 is out of range for a batch of 3 item(s) (0 to 2)'],
    ['a negative index', { errors: [{ i: -1 }] }, 'send.batch.poll.index -1 is out of range for a batch of 3 item(s) (0 to 2)'],
    ['a non-integer index', { errors: [{ i: 1.5 }] }, 'send.batch.poll.index must evaluate to an integer, got number 1.5'],
    ['an index given as a string', { errors: [{ i: '1' }] }, 'send.batch.poll.index must evaluate to an integer, got string "1"'],
    ['an entry without index', { errors: [{ message: 'x' }] }, 'send.batch.poll.index must evaluate to an integer, got nothing '],
  ];
  for (const [what, results, message] of bad) {
    it(`${what}: every event of the batch fails with batch_results_invalid`, async () => {
      const outcomes = await run(results, 3);
      for (const o of outcomes) expect(o).toMatchObject({ status: 'failed', reason: 'batch_results_invalid', message, possibly_duplicated: true });
    });
  }

  it('results that cannot be read at all keep the accepted events delivered, with a message', async () => {
    stub.answer('/batch', { status: 202, body: { id: 'b1' } });
    stub.answer('/status', { status: 200, body: { done: true } });
    stub.answer('/results', { status: 404, body: { error: 'gone' } });
    const outcomes = await integration('stub_poll').deliverAll([event(), event()]);
    for (const o of outcomes) {
      expect(o.status).toBe('delivered');
      expect(o.message).toMatch(/^accepted, but its processing results could not be read/);
    }
  });
});
