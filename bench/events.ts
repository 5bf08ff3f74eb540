/** What the trace and otel benches deliver: the example record, and N copies of the example event with distinct ids. */
import { readFileSync } from 'node:fs';
import { packagePath } from '../engine/paths.js';
import type { IntegrationRecord, SignalEvent } from '../engine/index.js';

export const benchRecord = JSON.parse(readFileSync(packagePath('examples', 'integration.json'), 'utf8')) as IntegrationRecord;
const template = JSON.parse(readFileSync(packagePath('examples', 'lead-submitted.json'), 'utf8')) as SignalEvent;
export const benchEvents = (n: number, tag: string): SignalEvent[] => Array.from({ length: n }, (_, i) => ({ ...template, event_id: `evt_${tag}_${i}` }));

/** Events/s of `deliver` over `list`, 32 in flight; every event must be delivered. */
export async function deliverRate(deliver: (e: SignalEvent) => Promise<{ status: string; reason?: string; message?: string }>, list: readonly SignalEvent[]): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < list.length) {
        const o = await deliver(list[next++]!);
        if (o.status !== 'delivered') throw new Error(`not delivered: ${o.reason} ${o.message}`);
      }
    }),
  );
  return list.length / ((performance.now() - t0) / 1000);
}
