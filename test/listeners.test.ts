/**
 * No MaxListenersExceededWarning on a normal run (issue 8 item 14): many deliveries in flight share one
 * abort signal (the CLI's, and the engine's own for shutdown), yet each shared signal carries a single
 * listener however many requests are in flight. Checked through process 'warning' events, at the CLI's
 * default concurrency and beyond.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { DEFAULT_CONCURRENCY } from '../cli/commands/deliver.js';
import { linkedSignal, SignalLinks } from '../engine/run/abort-fanout.js';
import { event, leadSubmitted, referenceRecord, withSetup, within } from './helpers/fixtures.js';

let warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);
beforeEach(() => {
  warnings = [];
  process.on('warning', onWarning);
});
afterEach(() => {
  process.off('warning', onWarning);
});
/** Warnings are emitted on the next tick: let them arrive before looking. */
const listenerWarnings = async () => {
  await new Promise((r) => setImmediate(r));
  return warnings.filter((w) => w.name === 'MaxListenersExceededWarning');
};

describe('abort listeners', () => {
  it('64 deliveries in flight with one shared caller signal: every one delivered, no listener warning', async () => {
    await withSetup({ faults: { slow: 1, slow_ms: 200, apply_to: ['events'] } }, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      const shared = new AbortController();
      const outcomes = await within(30_000, Promise.all(Array.from({ length: 64 }, () => integration.deliver(event(), { signal: shared.signal }))));
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
      expect(emu.events()).toHaveLength(64);
      expect(await listenerWarnings()).toEqual([]);
    });
  });

  it(`CLI deliver at the default concurrency (${DEFAULT_CONCURRENCY}) and at 64: no listener warning`, async () => {
    await withSetup({ faults: { slow: 1, slow_ms: 100, apply_to: ['events'] } }, {}, async ({ emu }) => {
      const dir = mkdtempSync(join(tmpdir(), 'si-listeners-'));
      const recordFile = join(dir, 'record.json');
      writeFileSync(recordFile, JSON.stringify(referenceRecord()));
      const eventsFile = join(dir, 'events.ndjson');
      writeFileSync(eventsFile, Array.from({ length: 96 }, (_, i) => JSON.stringify({ ...leadSubmitted(), event_id: `evt_l_${i}` })).join('\n') + '\n');
      for (const extra of [[], ['--concurrency', '64']]) {
        let err = '';
        const code = await run(['deliver', '--integration', recordFile, '--events', eventsFile, '--endpoint', emu.url, '--json', ...extra], {
          stdout: { write: () => true },
          stderr: { write: (t: string) => ((err += t), true) },
        });
        expect(code, err).toBe(0);
      }
      expect(emu.events()).toHaveLength(192);
      expect(await listenerWarnings()).toEqual([]);
    });
  });

  it('linkedSignal: one listener per parent, aborts every child with the reason, and leaves nothing behind', () => {
    const parent = new AbortController();
    const children = Array.from({ length: 50 }, () => linkedSignal(parent.signal));
    const released = linkedSignal(parent.signal);
    released.release();
    parent.abort('stop');
    expect(children.every((c) => c.signal.aborted && c.signal.reason === 'stop')).toBe(true);
    expect(released.signal.aborted).toBe(false);
    for (const c of children) c.release();
    const late = linkedSignal(parent.signal, undefined);
    expect(late.signal.aborted).toBe(true);
  });

  it('SignalLinks: one shared signal per caller signal, aborted by either side, dropped once unused', () => {
    const engine = new AbortController();
    const links = new SignalLinks(engine.signal);
    expect(links.signal().signal).toBe(engine.signal);
    const caller = new AbortController();
    const a = links.signal(caller.signal);
    const b = links.signal(caller.signal);
    expect(a.signal).toBe(b.signal);
    expect(a.signal).not.toBe(engine.signal);
    a.release();
    b.release();
    // Unused: the next one is a new signal, and the first no longer follows the caller.
    const c = links.signal(caller.signal);
    expect(c.signal).not.toBe(a.signal);
    caller.abort('caller stop');
    expect(c.signal.aborted && c.signal.reason === 'caller stop').toBe(true);
    expect(a.signal.aborted).toBe(false);
    expect(engine.signal.aborted).toBe(false);
    const other = new AbortController();
    const d = links.signal(other.signal);
    engine.abort('engine stop');
    expect(d.signal.aborted && d.signal.reason === 'engine stop').toBe(true);
    c.release();
    d.release();
  });
});
