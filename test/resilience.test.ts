/**
 * Resilience, end to end against the emulator over real HTTP on 127.0.0.1: what the engine does when the
 * vendor rate-limits, errors, resets connections, answers slowly or refuses credentials — retry when it
 * may help, stop when it cannot, honour the record's retry budget and rate limit, and report every
 * attempt. Faults come from the emulator's seeded injection, so "the first send fails, the retry
 * succeeds" is deterministic (see faultSeed), never a race against the engine.
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultOptions, RecordedRequest } from '../emulator/marketing-cloud.js';
import type { Outcome, OutcomeDetail } from '../engine/index.js';
import { event, faultSeed, referenceRecord, withSetup, within, type Json } from './helpers/fixtures.js';

const EVENTS_PATH = '/interaction/v1/events';
const sendsOf = (requests: RecordedRequest[]) => requests.filter((r) => r.path === EVENTS_PATH);

function recordWith(config: Json = {}, extra: Json = {}): Json {
  const r = referenceRecord();
  return { ...r, ...extra, config: { ...r.config, ...config } };
}

/** One fault on the send endpoint only, hitting the first send and missing the retry. */
function firstSendFails(fault: keyof FaultOptions, extra: FaultOptions = {}): FaultOptions {
  return { [fault]: 0.5, seed: faultSeed([true, false], 0.5), apply_to: ['events'], ...extra };
}

describe('rate limiting by the vendor (429)', () => {
  it('429 with Retry-After: waits the requested time, retries once and delivers (attempts 2)', async () => {
    await withSetup({ faults: firstSendFails('rate_limit_with_retry_after', { retry_after_seconds: 1 }) }, {}, async ({ emu, engine }) => {
      const e = event();
      const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(e));

      expect(outcome).toMatchObject({ status: 'delivered', event_id: e.event_id, http_status: 201, attempts: 2 });
      const sends = sendsOf(emu.requests);
      expect(sends.map((r) => r.status)).toEqual([429, 201]);
      expect(JSON.parse(sends[0]!.response_body)).toMatchObject({ errorcode: 50100, retryAfter: 1 });
      // Ordering, not speed: the retry did not go out before the vendor's Retry-After (1 s) had passed.
      expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(900);
      expect(emu.events()).toHaveLength(1);
    });
  });

  it('429 without Retry-After (errorcode 50200 "temporarily blocked"): retried after a backoff and delivered', async () => {
    await withSetup({ faults: firstSendFails('rate_limit_blocked') }, {}, async ({ emu, engine }) => {
      const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(event()));

      expect(outcome).toMatchObject({ status: 'delivered', attempts: 2 });
      const sends = sendsOf(emu.requests);
      expect(sends.map((r) => r.status)).toEqual([429, 201]);
      expect(JSON.parse(sends[0]!.response_body)).toMatchObject({ errorcode: 50200 });
      // A backoff, not an immediate retry (the default policy waits at least half of 250 ms).
      expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(100);
      expect(emu.events()).toHaveLength(1);
    });
  });
});

describe('server errors and client errors', () => {
  for (const [fault, status] of [['server_error', 500], ['unavailable', 503]] as const) {
    it(`${status} is retried and the event delivered (attempts 2)`, async () => {
      await withSetup({ faults: firstSendFails(fault) }, {}, async ({ emu, engine }) => {
        const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(event()));
        expect(outcome).toMatchObject({ status: 'delivered', attempts: 2 });
        const sends = sendsOf(emu.requests);
        expect(sends.map((r) => r.status)).toEqual([status, 201]);
        expect(sends[1]!.body).toBe(sends[0]!.body);
        expect(sends[1]!.headers['content-type']).toBe(sends[0]!.headers['content-type']);
        expect(emu.events()).toHaveLength(1);
      });
    });
  }

  it('400 (unknown event_definition_key) is not retried: attempts 1, retryable false, with the hint', async () => {
    await withSetup({}, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(recordWith({ event_definition_key: 'no_such_event' }));
      const outcome = await within(15_000, integration.deliver(event()));

      expect(outcome).toMatchObject({ status: 'failed', reason: 'http_error', http_status: 400, vendor_code: 10000, attempts: 1, retryable: false });
      expect(outcome.hint).toMatch(/event_definition_key/);
      expect(outcome.vendor_message).toMatch(/no_such_event/);
      expect(sendsOf(emu.requests).map((r) => r.status)).toEqual([400]);
      expect(emu.events()).toHaveLength(0);
    });
  });
});

describe("the record's retry budget", () => {
  it('max_attempts 3 with a permanent 500: exactly 3 sends, then failed, retryable, "gave up"', async () => {
    await withSetup({ faults: { server_error: 1, apply_to: ['events'] } }, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration({ ...referenceRecord(), retry: { max_attempts: 3 } });
      const outcome = await within(15_000, integration.deliver(event()));

      expect(outcome).toMatchObject({ status: 'failed', reason: 'http_error', http_status: 500, attempts: 3, retryable: true });
      expect(outcome.message).toMatch(/gave up/);
      expect(outcome.message).toMatch(/max attempts/);
      expect(sendsOf(emu.requests).map((r) => r.status)).toEqual([500, 500, 500]);
      expect(emu.tokenRequests()).toHaveLength(1);
    });
  });

  it('max_elapsed_ms 1000 with Retry-After 5: gives up at once instead of waiting past the budget', async () => {
    const faults: FaultOptions = { rate_limit_with_retry_after: 1, retry_after_seconds: 5, apply_to: ['events'] };
    await withSetup({ faults }, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration({ ...referenceRecord(), retry: { max_elapsed_ms: 1000 } });
      const outcome = await within(4_000, integration.deliver(event()), 'a delivery that should give up instead of waiting 5 s');

      expect(outcome).toMatchObject({ status: 'failed', http_status: 429, vendor_code: 50100, attempts: 1, retryable: true });
      expect(outcome.message).toMatch(/gave up/);
      expect(sendsOf(emu.requests)).toHaveLength(1);
    });
  });
});

describe('connection resets', () => {
  it('reset before the vendor recorded the event: retried, delivered, recorded once', async () => {
    await withSetup({ faults: firstSendFails('reset_before_record') }, {}, async ({ emu, engine }) => {
      const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(event()));

      expect(outcome).toMatchObject({ status: 'delivered', attempts: 2 });
      expect(sendsOf(emu.requests).map((r) => r.status)).toEqual([0, 201]);
      expect(emu.stats.resets_before_record).toBe(1);
      expect(emu.events()).toHaveLength(1);
    });
  });

  it('reset after the vendor recorded the event: retried, delivered, and flagged possibly_duplicated (it was recorded twice)', async () => {
    await withSetup({ faults: firstSendFails('reset_after_record') }, {}, async ({ emu, engine }) => {
      const e = event();
      const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(e));

      expect(outcome).toMatchObject({ status: 'delivered', attempts: 2, possibly_duplicated: true });
      expect(sendsOf(emu.requests).map((r) => r.status)).toEqual([0, 201]);
      expect(emu.stats.resets_after_record).toBe(1);
      const recorded = emu.events();
      expect(recorded).toHaveLength(2);
      expect(recorded.map((r) => r.ContactKey)).toEqual([e.properties.email, e.properties.email]);
    });
  });
});

describe('response timeout', () => {
  it('a vendor slower than timeouts.response_ms: each attempt times out (ETIMEDOUT), retried, then failed as network_error', async () => {
    const faults: FaultOptions = { slow: 1, slow_ms: 3_000, apply_to: ['events'] };
    await withSetup({ faults }, { timeouts: { response_ms: 200 } }, async ({ emu, engine }) => {
      const integration = engine.createIntegration({ ...referenceRecord(), retry: { max_attempts: 2 } });
      const outcome = await within(10_000, integration.deliver(event()));

      expect(outcome).toMatchObject({ status: 'failed', reason: 'network_error', attempts: 2, retryable: true });
      expect(outcome.message).toMatch(/ETIMEDOUT/);
      expect(outcome.http_status).toBeUndefined();
      expect(sendsOf(emu.requests)).toHaveLength(2);
      // The slow vendor recorded the event before answering (too late): it holds it twice, and the
      // outcome must say so.
      expect(emu.events()).toHaveLength(2);
      expect(outcome.possibly_duplicated).toBe(true);
    });
  });
});

describe('token stage failures', () => {
  it('a wrong client_secret: 50 concurrent events cost one token request; the failure is remembered; the right secret still works', async () => {
    await withSetup({}, { tokenFailureTtlMs: 30_000 }, async ({ emu, engine }) => {
      const bad = engine.createIntegration(recordWith({ client_secret: 'wrong-secret-value' }, { name: 'bad secret' }));
      const burst = async () => {
        const settled = await within(15_000, Promise.allSettled(Array.from({ length: 50 }, () => bad.deliver(event()))));
        expect(settled.every((s) => s.status === 'fulfilled')).toBe(true); // deliver never throws
        return settled.map((s) => (s as PromiseFulfilledResult<Outcome>).value);
      };

      const first = await burst();
      expect(emu.tokenRequests().length).toBeGreaterThanOrEqual(1);
      expect(emu.tokenRequests().length).toBeLessThanOrEqual(2);
      const tokenRequestsAfterFirst = emu.tokenRequests().length;
      const second = await burst();
      expect(emu.tokenRequests()).toHaveLength(tokenRequestsAfterFirst); // remembered: no new token request

      for (const o of [...first, ...second]) {
        expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', http_status: 401, retryable: false });
        expect(o.hint).toMatch(/401 Unauthorized on auth/);
      }
      expect(new Set([...first, ...second].map((o) => o.event_id)).size).toBe(100);
      expect(sendsOf(emu.requests)).toHaveLength(0);

      // Another cache key (the right secret) is not blocked by the remembered failure.
      const good = engine.createIntegration(referenceRecord());
      const ok = await within(15_000, good.deliver(event()));
      expect(ok.status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(tokenRequestsAfterFirst + 1);
    });
  });

  it('a transient token failure (503) is retried within max_attempts, shared by 20 waiting events, and not remembered', async () => {
    const record = { ...referenceRecord(), retry: { max_attempts: 3 } };
    await withSetup({ faults: { unavailable: 1, apply_to: ['token'] } }, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(record);

      // Phase 1: the token endpoint stays down. One shared fetch, at most 3 token requests, 20 failed outcomes.
      const down = await within(15_000, Promise.all(Array.from({ length: 20 }, () => integration.deliver(event()))));
      expect(emu.tokenRequests().length).toBeGreaterThanOrEqual(1);
      expect(emu.tokenRequests().length).toBeLessThanOrEqual(3);
      expect(emu.tokenRequests().every((r) => r.status === 503)).toBe(true);
      for (const o of down) expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', retryable: true });
      expect(sendsOf(emu.requests)).toHaveLength(0);

      // Phase 2: down for the first token request only (the fault is lifted as soon as the emulator has
      // answered it; the engine's retry comes after a backoff). A transient failure is not remembered,
      // so a new fetch starts, and its retry gets the token for all 20 events.
      emu.reset();
      emu.setFaults({ unavailable: 1, apply_to: ['token'] });
      const pending = Promise.all(Array.from({ length: 20 }, () => integration.deliver(event())));
      for (let i = 0; i < 2_000 && emu.tokenRequests().length === 0; i++) await sleep(2);
      emu.setFaults({});
      const recovered = await within(15_000, pending);
      const tokens = emu.tokenRequests();
      expect(tokens[0]!.status).toBe(503);
      expect(tokens.length).toBeGreaterThanOrEqual(2);
      expect(tokens.length).toBeLessThanOrEqual(3);
      for (const o of recovered) expect(o.status).toBe('delivered');
      expect(emu.events()).toHaveLength(20);
    });
  });
});

describe('tokens across retries', () => {
  it('a retry after a Retry-After wait longer than the token has left uses a fresh token, so the event is delivered', async () => {
    // Tokens live 1 s (the engine stops using one after 0.5 s). Draws, in request order:
    //   token 1: no 429, dies at once → send 1: 401 → re-authentication, token 2: healthy →
    //   send 2: 429 Retry-After 1 s → (token 2 is now past its life) → the retry must not use token 2.
    // A correct engine fetches token 3 (no 429, healthy) and send 3 gets 201. The trailing draws cover it.
    const pattern = [false, true, false, false, false, true, false, false, false];
    const faults: FaultOptions = {
      rate_limit_with_retry_after: 0.5,
      token_early_death: 0.5,
      token_death_ms: 0,
      retry_after_seconds: 1,
      seed: faultSeed(pattern, 0.5),
      apply_to: ['token', 'events'],
    };
    await withSetup({ faults, expires_in: 1 }, {}, async ({ emu, engine }) => {
      const outcome = await within(15_000, engine.createIntegration(referenceRecord()).deliver(event()));
      const sends = sendsOf(emu.requests);
      const bearer = (r: RecordedRequest) => String(r.headers['authorization']);

      expect(sends.slice(0, 2).map((r) => r.status)).toEqual([401, 429]);
      // The vendor is healthy and the token expiring is routine: the event must be delivered...
      expect({ status: outcome.status, message: outcome.message }).toEqual({ status: 'delivered', message: undefined });
      // ...by a retry that carries a new token, not the one that was past its life.
      expect(bearer(sends[2]!)).not.toBe(bearer(sends[1]!));
      expect(sends.map((r) => r.status)).toEqual([401, 429, 201]);
      // Each retry re-renders the URL and headers only: the body and its Content-Type are the first attempt's.
      expect(new Set(sends.map((r) => r.body)).size).toBe(1);
      expect(JSON.parse(sends[0]!.body)).toMatchObject({ ContactKey: expect.any(String), EventDefinitionKey: expect.any(String) });
      expect(sends.map((r) => r.headers['content-type'])).toEqual(Array(3).fill('application/json; charset=utf-8'));
    });
  });
});

describe('rate limit from the record', () => {
  it('requests_per_minute 600: 30 concurrent events all delivered, and the send rate never exceeds 10 + 10/s', async () => {
    await withSetup({}, {}, async ({ emu, engine }) => {
      const integration = engine.createIntegration({ ...referenceRecord(), rate_limit: { requests_per_minute: 600 } });
      const events = Array.from({ length: 30 }, () => event());
      const outcomes = await within(20_000, Promise.all(events.map((e) => integration.deliver(e))));

      expect(outcomes.map((o) => o.status)).toEqual(events.map(() => 'delivered'));
      expect(outcomes.map((o) => o.event_id)).toEqual(events.map((e) => e.event_id));
      expect(emu.events()).toHaveLength(30);
      const at = sendsOf(emu.requests).map((r) => r.at).sort((a, b) => a - b);
      expect(at).toHaveLength(30);
      // Every prefix of the sends: at most the burst (10), plus 10 per second since the first, plus 1 for
      // clock granularity and loopback latency.
      const t0 = at[0]!;
      const excess = at.map((t, i) => ({ count: i + 1, allowed: 10 + ((t - t0) / 1000) * 10 + 1 })).filter((p) => p.count > p.allowed);
      expect(excess).toEqual([]);
    });
  });
});

describe('observability', () => {
  it('onOutcome and the outcome event get exactly one call per event, with every attempt and its status', async () => {
    const hook: [Outcome, OutcomeDetail][] = [];
    const emitted: [Outcome, OutcomeDetail][] = [];
    // Send draws in order: event A → 500 then 201, event B → 201, event C (bad key) → 400.
    const faults: FaultOptions = { server_error: 0.5, seed: faultSeed([true, false, false, false], 0.5), apply_to: ['events'] };
    await withSetup({ faults }, { onOutcome: (o, d) => hook.push([o, d]) }, async ({ engine }) => {
      engine.on('outcome', (o, d) => emitted.push([o, d]));
      const good = engine.createIntegration(referenceRecord());
      const badKey = engine.createIntegration(recordWith({ event_definition_key: 'no_such_event' }, { name: 'bad key' }));
      const [a, b, c] = [event(), event(), event()];
      const outcomes = [await good.deliver(a), await good.deliver(b), await badKey.deliver(c)];
      const skipped = await good.deliver(event({ consent: { marketing: false } }));
      await sleep(50); // nothing late may arrive

      expect(hook.map(([o]) => o)).toEqual([...outcomes, skipped]);
      expect(emitted.map(([o]) => o)).toEqual([...outcomes, skipped]);
      expect(hook.map(([o]) => o.event_id)).toEqual([a.event_id, b.event_id, c.event_id, skipped.event_id]);

      // The first delivery waited for the token request: its detail holds that attempt too (stage auth).
      const statuses = hook.map(([, d]) => d.attempts.map((x) => `${x.stage}:${x.status}`));
      expect(statuses).toEqual([['auth:200', 'send:500', 'send:201'], ['send:201'], ['send:400'], []]);
      expect(hook[0]![1].attempts[0]).toMatchObject({ stage: 'auth', auth_stage: 'token' });
      for (const [o, d] of hook) {
        expect(d.attempts.filter((x) => x.stage === 'send')).toHaveLength(o.attempts);
        for (const x of d.attempts) expect(x.duration_ms).toBeGreaterThanOrEqual(0);
        expect(o.duration_ms).toBeGreaterThanOrEqual(0);
      }
      expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'failed']);
      // The emitter and the hook see the same detail.
      expect(emitted.map(([, d]) => d)).toEqual(hook.map(([, d]) => d));
    });
  });
});
