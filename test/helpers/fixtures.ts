/** Shared fixtures: the product reference's example integration and event, and an emulator per test file. */
import { readFileSync } from 'node:fs';
import { startMarketingCloudEmulator, type Emulator, type EmulatorOptions } from '../../emulator/marketing-cloud.js';
import { Engine, type EngineOptions } from '../../engine/index.js';

const read = (f: string): unknown => JSON.parse(readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8'));

export type Json = Record<string, any>;

export const referenceRecord = (): Json => structuredClone(read('integration.json')) as Json;
export const leadSubmitted = (): Json => structuredClone(read('lead-submitted.json')) as Json;

/** The reference's "Marketing Cloud payload sent by Signal", exactly as printed there. */
export const REFERENCE_PAYLOAD =
  '{"ContactKey":"jane.doe@example.com","EventDefinitionKey":"datafly_lead_submitted","Data":{"email":"jane.doe@example.com","first_name":"Jane","last_name":"Doe","phone":"+447700900123","lead_type":"newsletter","lead_value":0,"currency":"GBP","user_id":"user-123"}}';

let n = 0;
export function event(overrides: Json = {}): Json {
  const e = leadSubmitted();
  n++;
  return { ...e, event_id: `evt_test_${n}`, ...overrides };
}

export async function setup(emuOpts: EmulatorOptions = {}, engineOpts: EngineOptions = {}): Promise<{ emu: Emulator; engine: Engine; close: () => Promise<void> }> {
  const emu = await startMarketingCloudEmulator(emuOpts);
  const engine = await Engine.load({ endpoint: emu.url, ...engineOpts });
  return {
    emu,
    engine,
    close: async () => {
      engine.close();
      await emu.close();
    },
  };
}
