/**
 * engine.shutdown() never duplicates in-flight events (issue 8 item 15): it stops taking work, lets
 * in-flight deliveries finish up to its deadline, then aborts them without retry, and resolves only once
 * every outcome is final. A stub vendor on 127.0.0.1 that answers slowly; order, not speed, is asserted.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine, type Outcome } from '../engine/index.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';
import { event, FAST_RETRY, within } from './helpers/fixtures.js';

const SPEC = `
spec_version: 1
vendor: stub_slow
title: Slow stub vendor
version: 1.0.0
config:
  type: object
  properties:
    list: { type: string, description: the list id }
allowed_hosts: [api.stub.example]
send:
  request:
    method: POST
    url: https://api.stub.example/send
    body:
      id: event_id
  success: { status: [2xx] }
`;

let stub: StubVendor;
let dir: string;
beforeEach(async () => {
  stub = await startStubVendor();
  dir = await mkdtemp(join(tmpdir(), 'shutdown-'));
  await writeFile(join(dir, 'slow.yaml'), SPEC);
  await writeFile(join(dir, 'batch.yaml'), SPEC.replace('vendor: stub_slow', 'vendor: stub_batch') + '  batch:\n    max_items: 10\n    max_wait_ms: 60000\n    body:\n      items: $items\n');
});
afterEach(() => stub.close());

const record = { source_id: 's', name: 'slow', vendor: 'stub_slow', enabled: true, config: { list: 'l' } };
const sends = () => stub.requests.filter((r) => r.path === '/send');

/** Start `n` deliveries and wait (bounded) until the vendor has all their requests. */
async function inFlight(engine: Engine, n: number): Promise<{ outcomes: Promise<Outcome[]>; settled: () => number }> {
  const integration = engine.createIntegration(record);
  let settled = 0;
  const outcomes = Promise.all(Array.from({ length: n }, () => integration.deliver(event()).finally(() => settled++)));
  for (let i = 0; i < 400 && sends().length < n; i++) await new Promise((r) => setTimeout(r, 10));
  expect(sends()).toHaveLength(n);
  return { outcomes, settled: () => settled };
}

describe('engine.shutdown()', () => {
  it('waits for in-flight sends: each delivered once, resolved only after every outcome; new work refused', async () => {
    stub.answer('/send', { status: 200, body: { ok: true }, delay_ms: 1_000 });
    const engine = await Engine.load({ specs: dir, endpoint: stub.url, retry: FAST_RETRY });
    const { outcomes, settled } = await inFlight(engine, 3);

    const stopped = engine.shutdown();
    const late = await engine.createIntegration(record).deliver(event());
    expect(late).toMatchObject({ status: 'failed', reason: 'interrupted', retryable: true, attempts: 0 });
    expect(late.message).toMatch(/shutting down/);

    await within(15_000, stopped, 'shutdown');
    expect(settled()).toBe(3); // every outcome was final before shutdown resolved
    const results = await outcomes;
    for (const o of results) {
      expect(o).toMatchObject({ status: 'delivered', attempts: 1 });
      expect(o.possibly_duplicated).toBeUndefined();
    }
    expect(sends()).toHaveLength(3); // no retry, no late request for the refused event
    expect(engine.shutdown()).toBe(stopped); // idempotent
  });

  it('past its deadline: aborts in-flight sends without retry — failed interrupted, possibly_duplicated — then resolves', async () => {
    stub.answer('/send', { status: 200, body: { ok: true }, delay_ms: 3_000 });
    const engine = await Engine.load({ specs: dir, endpoint: stub.url, retry: FAST_RETRY });
    const { outcomes, settled } = await inFlight(engine, 3);

    await within(10_000, engine.shutdown({ timeoutMs: 100 }), 'shutdown');
    expect(settled()).toBe(3);
    for (const o of await outcomes) {
      expect(o).toMatchObject({ status: 'failed', reason: 'interrupted', retryable: true, possibly_duplicated: true, attempts: 1 });
    }
    // Give a retry (got treats destroyed sockets as retryable) the chance to show up: there must be none.
    await new Promise((r) => setTimeout(r, 300));
    expect(sends()).toHaveLength(3);
  });

  it('a batching integration: the partial batch is sent at once, and past the deadline aborted — every event interrupted, one request', async () => {
    stub.answer('/send', { status: 200, body: { ok: true }, delay_ms: 3_000 });
    const engine = await Engine.load({ specs: dir, endpoint: stub.url, retry: FAST_RETRY });
    const integration = engine.createIntegration({ ...record, name: 'batch', vendor: 'stub_batch' });
    const outcomes = Promise.all(Array.from({ length: 3 }, () => integration.deliver(event())));
    for (let i = 0; i < 400 && integration.pending < 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sends()).toHaveLength(0); // held for a minute by max_wait_ms
    await within(10_000, engine.shutdown({ timeoutMs: 300 }), 'shutdown');
    for (const o of await outcomes) expect(o).toMatchObject({ status: 'failed', reason: 'interrupted', batch_size: 3, possibly_duplicated: true });
    expect(sends()).toHaveLength(1);
    expect(JSON.parse(sends()[0]!.body).items).toHaveLength(3);
  });

  it('close(): aborts in flight at once, without retry', async () => {
    stub.answer('/send', { status: 200, body: { ok: true }, delay_ms: 3_000 });
    const engine = await Engine.load({ specs: dir, endpoint: stub.url, retry: FAST_RETRY });
    const { outcomes } = await inFlight(engine, 3);
    engine.close();
    for (const o of await within(10_000, outcomes)) expect(o).toMatchObject({ status: 'failed', reason: 'interrupted', possibly_duplicated: true });
    await new Promise((r) => setTimeout(r, 300));
    expect(sends()).toHaveLength(3);
  });
});
