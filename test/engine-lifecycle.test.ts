/**
 * The runtime's use of the library, as docs/library.md shows it: load specs at boot (also from text), create
 * integrations from records, deliver, observe outcomes, reload keeping cached tokens, dispose an
 * integration, shut down.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { BUNDLED_SPECS_DIR, Engine, SpecError, type Outcome } from '../engine/index.js';
import { event, referenceRecord } from './helpers/fixtures.js';

let emu: Emulator;
beforeAll(async () => {
  emu = await startMarketingCloudEmulator();
});
afterAll(() => emu.close());
beforeEach(() => emu.reset());

const specFile = join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml');
const specText = (): string => readFileSync(specFile, 'utf8');

describe('Engine lifecycle', () => {
  it('loads specs from in-memory text (extends resolved beside the named file) and delivers', async () => {
    const engine = await Engine.load({ specTexts: [{ file: specFile, text: specText() }], endpoint: emu.url });
    try {
      // Only the given text: the bundled folder is not loaded as well.
      expect([...engine.specs.keys()]).toEqual(['salesforce_marketing_cloud']);
      const outcomes: Outcome[] = [];
      engine.on('outcome', (o) => outcomes.push(o));
      const o = await engine.createIntegration(referenceRecord()).deliver(event());
      expect(o.status).toBe('delivered');
      expect(outcomes).toEqual([o]);
    } finally {
      await engine.shutdown();
    }
  });

  it('an onOutcome that throws rejects that delivery (sent or decided at once), and the event still stops counting in flight: shutdown completes', async () => {
    const engine = await Engine.load({
      endpoint: emu.url,
      onOutcome: () => {
        throw new Error('observer broke');
      },
    });
    const integration = engine.createIntegration(referenceRecord());
    await expect(integration.deliver(event())).rejects.toThrow('observer broke');
    await expect(integration.deliver(event({ event: 'Page Viewed' }))).rejects.toThrow('observer broke');
    expect(emu.events()).toHaveLength(1);
    // A count left at 1 would hold shutdown until its deadline and then for ever: the test would time out.
    await engine.shutdown({ timeoutMs: 60_000 });
  });

  it('a broken spec text is a SpecError naming the given file and line', async () => {
    const broken = specText().replace(/^vendor: .*$/m, 'vendor: [unclosed');
    const err = await Engine.load({ specTexts: [{ file: specFile, text: broken }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics[0]!.file).toBe(specFile);
  });

  it('reload() swaps the specs and keeps cached tokens; a failed reload keeps the old specs', async () => {
    let text = specText();
    const engine = await Engine.load({ specTexts: [{ file: specFile, text }], endpoint: emu.url });
    try {
      expect((await engine.createIntegration(referenceRecord()).deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1);
      const before = engine.specs.get('salesforce_marketing_cloud');

      text = `${text}\n# edited\n`;
      await engine.reload({ specTexts: [{ file: specFile, text }] });
      expect(engine.specs.get('salesforce_marketing_cloud')).not.toBe(before);
      expect((await engine.createIntegration(referenceRecord()).deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1); // the token from before the reload was reused

      const current = engine.specs;
      await expect(engine.reload({ specTexts: [{ file: specFile, text: 'vendor: [' }] })).rejects.toBeInstanceOf(SpecError);
      expect(engine.specs).toBe(current);
    } finally {
      await engine.shutdown();
    }
  });

  it('dispose() sends what a batching integration still holds, then forgets it', async () => {
    const engine = await Engine.load({ endpoint: emu.url });
    try {
      const record = { ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch' };
      const integration = engine.createIntegration(record);
      const pending = integration.deliver(event());
      await vi.waitFor(() => expect(integration.pending).toBe(1));
      await engine.dispose(integration);
      // Sent by dispose itself, not by the batch's max_wait_ms timer (1 s) later.
      expect(emu.requests.filter((r) => r.path === '/interaction/v1/async/events')).toHaveLength(1);
      expect((await pending).status).toBe('delivered');
    } finally {
      await engine.shutdown();
    }
  });
});
