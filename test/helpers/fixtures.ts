/** Shared fixtures: the product reference's example integration and event, and an emulator per test file. */
import { readFileSync } from 'node:fs';
import { startMarketingCloudEmulator, type Emulator, type EmulatorOptions } from '../../emulator/marketing-cloud.js';
import { Engine, type EngineOptions } from '../../engine/index.js';
import { mulberry32 } from '../../emulator/prng.js';

const read = (f: string): unknown => JSON.parse(readFileSync(new URL(`../../examples/${f}`, import.meta.url), 'utf8'));

// Loose on purpose: tests hand the engine invalid events and records as well as valid ones.
export type Json = any;

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

/**
 * Backoffs short enough for tests that exercise retries (250 ms doubling, the pre-issue-8 schedule); the
 * default policy spreads attempts over 30 s or more and is tested as a pure function.
 */
export const FAST_RETRY = { base_delay_ms: 250, multiplier: 2, max_delay_ms: 15_000, max_elapsed_ms: 60_000 } as const;

export async function setup(emuOpts: EmulatorOptions = {}, engineOpts: EngineOptions = {}): Promise<{ emu: Emulator; engine: Engine; close: () => Promise<void> }> {
  const emu = await startMarketingCloudEmulator(emuOpts);
  const engine = await Engine.load({ endpoint: emu.url, retry: FAST_RETRY, ...engineOpts });
  return {
    emu,
    engine,
    close: async () => {
      engine.close();
      await emu.close();
    },
  };
}

/** A fresh emulator and engine (so a fresh token cache) for one test, always closed, even when the test fails. */
export async function withSetup<T>(
  emuOpts: EmulatorOptions,
  engineOpts: EngineOptions,
  fn: (ctx: Awaited<ReturnType<typeof setup>>) => Promise<T>,
): Promise<T> {
  const ctx = await setup(emuOpts, engineOpts);
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

/**
 * A fault seed for the emulator whose first draws hit (true) or miss (false) in the given order, for a
 * fault configuration with exactly ONE fault at `rate` (the emulator then draws one number per eligible
 * request, from mulberry32(seed)). Lets a test say "the first send fails, the retry succeeds" without
 * racing the engine.
 */
export function faultSeed(pattern: readonly boolean[], rate: number): number {
  for (let seed = 1; seed < 1_000_000; seed++) {
    const rng = mulberry32(seed);
    if (pattern.every((hit) => rng() < rate === hit)) return seed;
  }
  throw new Error(`no seed below 1e6 gives the fault pattern ${JSON.stringify(pattern)} at rate ${rate}`);
}

/** Rejects if `p` has not settled within `ms`: keeps a hung delivery from hanging the test run. */
export async function within<T>(ms: number, p: Promise<T>, what = 'operation'): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}
