/**
 * Batching: the pure overflow rule, the Batcher's flush triggers (count, bytes, wait, flush, shutdown),
 * and batch boundaries by bytes end to end against the emulator.
 */
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Batcher, wouldOverflow, type BatchLimits, type Pending } from '../engine/run/batcher.js';
import { BUNDLED_SPECS_DIR, Engine } from '../engine/index.js';
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { event, referenceRecord, type Json } from './helpers/fixtures.js';

const limits = (over: Partial<BatchLimits> = {}): BatchLimits => ({ max_items: 3, max_bytes: 100, max_wait_ms: 10_000, envelope_bytes: 10, max_in_flight: 1, ...over });

describe('wouldOverflow', () => {
  it.each([
    [0, 0, 500, false, 'an empty batch always takes an item (oversized items are refused before)'],
    [2, 20, 10, false, 'room by count and bytes'],
    [3, 20, 10, true, 'full by count'],
    [2, 70, 19, true, 'envelope 10 + 70 + 19 + 2 separators = 101 > 100'],
    [2, 70, 18, false, 'exactly 100 bytes fits'],
  ])('count %i, %i bytes, + %i bytes → %s (%s)', (count, total, bytes, expected) => {
    expect(wouldOverflow(limits(), count, total, bytes)).toBe(expected);
  });
});

function recorder(l: BatchLimits) {
  const sent: string[][] = [];
  const b = new Batcher<string, number>(l, async (batch: Pending<string, number>[]) => {
    sent.push(batch.map((p) => p.item));
    batch.forEach((p, i) => p.resolve(i));
  });
  return { b, sent };
}

describe('Batcher', () => {
  it('cuts by count', async () => {
    const { b, sent } = recorder(limits());
    await Promise.all(['a', 'b', 'c', 'd', 'e', 'f'].map((x) => b.add(x, 1)));
    expect(sent).toEqual([['a', 'b', 'c'], ['d', 'e', 'f']]);
  });

  it('cuts by bytes before an item would overflow', async () => {
    const { b, sent } = recorder(limits({ max_items: 100 }));
    const done = ['a', 'b', 'c'].map((x) => b.add(x, 40));
    await b.flush();
    await Promise.all(done);
    expect(sent).toEqual([['a', 'b'], ['c']]);
  });

  it('sends a partial batch after max_wait_ms, and on flush without waiting', async () => {
    const { b, sent } = recorder(limits({ max_wait_ms: 20 }));
    await b.add('a', 1);
    expect(sent).toEqual([['a']]);
    const slow = recorder(limits({ max_wait_ms: 60_000 }));
    const p = slow.b.add('x', 1);
    await slow.b.flush();
    expect(await p).toBe(0);
    expect(slow.sent).toEqual([['x']]);
  });

  it('keeps at most max_in_flight batches in flight; the rest wait their turn, in order', async () => {
    let inFlight = 0;
    let peak = 0;
    const order: string[] = [];
    const b = new Batcher<string, void>(limits({ max_items: 1, max_in_flight: 2 }), async (batch) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      order.push(batch[0]!.item);
      inFlight--;
      batch.forEach((p) => p.resolve());
    });
    await Promise.all(['1', '2', '3', '4', '5'].map((x) => b.add(x, 1)));
    expect(peak).toBe(2);
    expect(order.sort()).toEqual(['1', '2', '3', '4', '5']);
  });
});

describe('batch boundaries by bytes, end to end', () => {
  it('splits journey batches so no request body exceeds max_bytes, and refuses an item that alone is too large', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bytes-'));
    await mkdir(join(dir, 'partials'));
    await copyFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
    await copyFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), join(dir, 'salesforce_marketing_cloud.yaml'));
    const batchSpec = await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud_journey_batch.yaml'), 'utf8');
    await writeFile(join(dir, 'batch.yaml'), batchSpec.replace('max_bytes: 5000000', 'max_bytes: 2000'));
    const emu = await startMarketingCloudEmulator();
    const engine = await Engine.load({ specs: dir, endpoint: emu.url });
    try {
      const integration = engine.createIntegration({ ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch' });
      const events = Array.from({ length: 40 }, () => event());
      const huge = event({ properties: { ...event().properties, lead_type: 'x'.repeat(3000) } });
      const outcomes = await integration.deliverAll([...events, huge]);
      expect(outcomes.slice(0, 40).every((o) => o.status === 'delivered')).toBe(true);
      expect(outcomes[40]).toMatchObject({ status: 'failed', reason: 'item_too_large', event_id: huge.event_id });
      const requests = emu.requests.filter((r) => r.path === '/interaction/v1/async/events');
      expect(requests.length).toBeGreaterThan(1);
      for (const r of requests) expect(Buffer.byteLength(r.body)).toBeLessThanOrEqual(2000);
      expect(requests.reduce((n, r) => n + (r.json as Json).members.length, 0)).toBe(40);
    } finally {
      await engine.shutdown();
      await emu.close();
    }
  });

  it('engine.shutdown() sends what batching integrations still hold', async () => {
    const emu = await startMarketingCloudEmulator();
    const engine = await Engine.load({ endpoint: emu.url });
    const integration = engine.createIntegration({ ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch' });
    const pending = [integration.deliver(event()), integration.deliver(event())];
    // Wait (bounded) until both sit in the batcher, whose own timer is a second away.
    for (let i = 0; i < 200 && integration.pending < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(integration.pending).toBe(2);
    await engine.shutdown();
    expect((await Promise.all(pending)).map((o) => o.status)).toEqual(['delivered', 'delivered']);
    await emu.close();
  });
});
