/**
 * Soak: thousands of distinct events through one integration while the emulator injects every fault it
 * knows at modest rates (rate limits with and without Retry-After, 500, 503, resets before and after the
 * event is recorded, slow answers, tokens that die early). Whatever happens, the books must balance:
 * one outcome per event, every delivered event really recorded by the vendor, nothing recorded that was
 * not sent, and every duplicate the vendor holds owned up to as `possibly_duplicated`.
 */
import { describe, expect, it } from 'vitest';
import type { Outcome } from '../engine/index.js';
import { leadSubmitted, referenceRecord, withSetup, within, type Json } from './helpers/fixtures.js';

const EVENTS = 5_000;
const MAX_ATTEMPTS = 6;

describe('soak under injected faults', () => {
  it(`${EVENTS} distinct events, concurrency 64, every fault on: every event accounted for exactly once`, async () => {
    const faults = {
      seed: 20_240_601,
      rate_limit_with_retry_after: 0.02,
      retry_after_seconds: 1,
      rate_limit_blocked: 0.02,
      server_error: 0.02,
      unavailable: 0.02,
      reset_before_record: 0.01,
      reset_after_record: 0.01,
      slow: 0.02,
      slow_ms: 50,
      // Tokens live 3 s (refreshed after ~2 s), so over the run there are enough token requests for early
      // deaths to happen: a dead token means a 401 on send and one re-authentication.
      token_early_death: 0.2,
      token_death_ms: 400,
    };
    await withSetup({ faults, expires_in: 3 }, {}, async ({ emu, engine }) => {
      const record = {
        ...referenceRecord(),
        retry: { max_attempts: MAX_ATTEMPTS, max_elapsed_ms: 20_000 },
        // The vendor does not echo event_id: carry it in Data to correlate what it recorded.
        field_mappings: { 'Data.event_id': 'event_id' },
      };
      const integration = engine.createIntegration(record);
      const base = leadSubmitted();
      const events: Json[] = Array.from({ length: EVENTS }, (_, i) => ({
        ...base,
        event_id: `evt_soak_${String(i).padStart(5, '0')}`,
        properties: { ...base.properties, email: `soak.${i}@example.com` },
      }));
      const sentIds = new Set(events.map((e) => e.event_id as string));
      expect(sentIds.size).toBe(EVENTS);

      const hooked = new Map<string, number>();
      engine.on('outcome', (o) => hooked.set(o.event_id ?? 'null', (hooked.get(o.event_id ?? 'null') ?? 0) + 1));

      const started = performance.now();
      const outcomes: Outcome[] = await within(50_000, integration.deliverAll(events, { concurrency: 64 }), 'the soak');
      const wallMs = Math.round(performance.now() - started);

      // One outcome per event, in input order, each event exactly once (returned and emitted).
      expect(outcomes).toHaveLength(EVENTS);
      expect(outcomes.map((o) => o.event_id)).toEqual(events.map((e) => e.event_id));
      expect(hooked.size).toBe(EVENTS);
      expect([...hooked.values()].every((n) => n === 1)).toBe(true);

      // Delivered or failed, never skipped; attempts within the budget (+1 for one re-authentication).
      expect(outcomes.filter((o) => o.status !== 'delivered' && o.status !== 'failed')).toEqual([]);
      expect(outcomes.filter((o) => o.attempts > MAX_ATTEMPTS + 1)).toEqual([]);
      expect(outcomes.filter((o) => o.status === 'delivered' && o.attempts < 1)).toEqual([]);

      // What the vendor recorded, by event_id.
      const recordedCount = new Map<string, number>();
      for (const r of emu.events()) {
        const id = (r.Data as Json | null)?.event_id as string;
        recordedCount.set(id, (recordedCount.get(id) ?? 0) + 1);
      }
      // Nothing recorded that we did not send.
      expect([...recordedCount.keys()].filter((id) => !sentIds.has(id))).toEqual([]);
      // Every delivered event is really there.
      const delivered = outcomes.filter((o) => o.status === 'delivered');
      expect(delivered.filter((o) => !recordedCount.has(o.event_id!)).map((o) => o.event_id)).toEqual([]);
      // Every event the vendor holds twice (or more) is flagged possibly_duplicated, and there are no more
      // duplicates than connections broken after recording.
      const byId = new Map(outcomes.map((o) => [o.event_id!, o]));
      const duplicated = [...recordedCount.entries()].filter(([, n]) => n > 1).map(([id]) => id);
      expect(duplicated.filter((id) => byId.get(id)!.possibly_duplicated !== true)).toEqual([]);
      expect(duplicated.length).toBeLessThanOrEqual(emu.stats.resets_after_record);
      expect(emu.stats.internal_errors).toBe(0);

      const failed = outcomes.filter((o) => o.status === 'failed');
      // A failure is the vendor's doing, reported as such; never an engine crash turned into an outcome.
      expect(failed.filter((o) => o.reason === 'internal_error')).toEqual([]);
      const flagged = outcomes.filter((o) => o.possibly_duplicated).length;
      const sends = emu.requests.filter((r) => r.path === '/interaction/v1/events').length;
      const s = emu.stats;
      const failReasons = [...new Set(failed.map((o) => `${o.reason}:${o.http_status ?? o.message}`))].slice(0, 5);
      console.log(
        `soak: events=${EVENTS} delivered=${delivered.length} failed=${failed.length} possibly_duplicated=${flagged} ` +
          `recorded_twice=${duplicated.length} requests=${s.requests} sends=${sends} retries=${sends - EVENTS} ` +
          `token_requests=${emu.tokenRequests().length} 401s=${s.unauthorized} early_token_deaths=${s.token_early_deaths} ` +
          `429=${s.rate_limited} 500=${s.server_errors} 503=${s.unavailable} resets_before=${s.resets_before_record} ` +
          `resets_after=${s.resets_after_record} slow=${s.slow} max_attempts_seen=${Math.max(...outcomes.map((o) => o.attempts))} ` +
          `wall_ms=${wallMs}${failReasons.length ? ` fail_reasons=${JSON.stringify(failReasons)}` : ''}`,
      );
    });
  });
});
