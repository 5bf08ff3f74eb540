/**
 * Access tokens, end to end against the emulator: one token request however many deliveries need it,
 * refresh before expiry, re-authentication after a 401, and a token never shared across credentials
 * or business units.
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EmulatorOptions } from '../emulator/marketing-cloud.js';
import type { Outcome } from '../engine/index.js';
import { event, referenceRecord, setup, type Json } from './helpers/fixtures.js';

const TENANT = 'mc-abc123xyz';
const EVENTS_PATH = '/interaction/v1/events';

type Ctx = Awaited<ReturnType<typeof setup>>;

/** A fresh emulator and engine (so a fresh token cache) per test, always closed. */
async function withSetup(emuOpts: EmulatorOptions, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const ctx = await setup(emuOpts);
  try {
    await fn(ctx);
  } finally {
    await ctx.close();
  }
}

function recordWith(config: Json, extra: Json = {}): Json {
  const r = referenceRecord();
  return { ...r, ...extra, config: { ...r.config, ...config } };
}

const bearer = (h: string | string[] | undefined): string => String(h ?? '').replace(/^Bearer /, '');

describe('token requests are single-flight', () => {
  it('1,000 concurrent deliveries with no cached token make exactly one token request, and all are delivered', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      const events = Array.from({ length: 1000 }, () => event());
      const outcomes = await Promise.all(events.map((e) => integration.deliver(e)));

      expect(emu.tokenRequests()).toHaveLength(1);
      expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(1000);
      expect(outcomes.map((o) => o.event_id)).toEqual(events.map((e) => e.event_id));
      expect(emu.events()).toHaveLength(1000);
      expect(emu.stats.unauthorized).toBe(0);
      // Every send used the one token that was issued.
      const tokens = new Set(emu.requests.filter((r) => r.path === EVENTS_PATH).map((r) => bearer(r.headers['authorization'])));
      expect(tokens.size).toBe(1);
    });
  });
});

describe('token refresh', () => {
  it('refreshes a short-lived token before it expires: two token requests and no 401', async () => {
    await withSetup({ expires_in: 2 }, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      const first = await integration.deliver(event());
      expect(first.status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1);

      // A 2 s token is refreshed 1 s before its stated expiry (engine/policy/token-expiry.ts). Waiting past
      // that point but (normally) not past the expiry: an engine without the margin would still use it.
      await sleep(1_300);
      const second = await integration.deliver(event());

      expect(second.status).toBe('delivered');
      expect(second.attempts).toBe(1);
      expect(emu.tokenRequests()).toHaveLength(2);
      expect(emu.stats.unauthorized).toBe(0);
      expect(emu.requests.filter((r) => r.status === 401)).toEqual([]);
      const sends = emu.requests.filter((r) => r.path === EVENTS_PATH);
      expect(sends).toHaveLength(2);
      expect(bearer(sends[0]!.headers['authorization'])).not.toBe(bearer(sends[1]!.headers['authorization']));
    });
  });

  it('keeps using a valid token: sequential deliveries inside its lifetime make one token request', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      for (let i = 0; i < 5; i++) expect((await integration.deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1);
    });
  });
});

describe('401 from the send stage', () => {
  it('re-authenticates exactly once and retries once: delivered with attempts 2', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      expect((await integration.deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1);

      emu.revokeTokens();
      const e = event();
      const outcome = await integration.deliver(e);

      expect(outcome.status).toBe('delivered');
      expect(outcome.attempts).toBe(2);
      expect(outcome.event_id).toBe(e.event_id);
      expect(emu.tokenRequests()).toHaveLength(2); // one new token request
      const sends = emu.requests.filter((r) => r.path === EVENTS_PATH);
      expect(sends.map((r) => r.status)).toEqual([201, 401, 201]);
      // The retry carried the new token, not the revoked one.
      expect(bearer(sends[2]!.headers['authorization'])).not.toBe(bearer(sends[1]!.headers['authorization']));
      expect(emu.events()).toHaveLength(2);

      // The fresh token is cached again: the next event needs no token request and no retry.
      const next = await integration.deliver(event());
      expect(next.status).toBe('delivered');
      expect(next.attempts).toBe(1);
      expect(emu.tokenRequests()).toHaveLength(2);
    });
  });

  it('concurrent deliveries hitting a revoked token share one re-authentication', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      expect((await integration.deliver(event())).status).toBe('delivered');
      emu.revokeTokens();
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => integration.deliver(event())));
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
      expect(emu.tokenRequests()).toHaveLength(2);
    });
  });

  it('when the re-authenticated request gets 401 again, fails with the 401 hint instead of looping', async () => {
    // Every issued token is dead on arrival, so re-authenticating can never help.
    const faults = { token_early_death: 1, token_death_ms: 0, apply_to: ['token' as const] };
    await withSetup({ faults }, async ({ emu, engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      const e = event();
      const outcome: Outcome = await integration.deliver(e);

      expect(outcome.status).toBe('failed');
      expect(outcome.event_id).toBe(e.event_id);
      expect(outcome.http_status).toBe(401);
      expect(outcome.hint).toMatch(/401 after a successful auth/);
      expect(outcome.attempts).toBe(2);
      expect(emu.tokenRequests()).toHaveLength(2); // the first token and exactly one re-auth
      const sends = emu.requests.filter((r) => r.path === EVENTS_PATH);
      expect(sends.map((r) => r.status)).toEqual([401, 401]);
      expect(emu.events()).toHaveLength(0);
      expect(JSON.stringify(outcome)).not.toContain('shh-secret-value');
    });
  });
});

describe('tokens are never shared across credentials or business units', () => {
  it('same tenant and client_id but different account_id (MID): two token requests, each event under its own MID', async () => {
    const clients = [{ tenant: TENANT, client_id: 'multi-bu', client_secret: 'bu-secret-value', account_ids: ['1111111', '2222222'] }];
    await withSetup({ clients }, async ({ emu, engine }) => {
      const a = engine.createIntegration(recordWith({ client_id: 'multi-bu', client_secret: 'bu-secret-value', account_id: '1111111' }, { name: 'BU one' }));
      const b = engine.createIntegration(recordWith({ client_id: 'multi-bu', client_secret: 'bu-secret-value', account_id: '2222222' }, { name: 'BU two' }));
      const ev = (who: string) => {
        const e = event();
        e.properties = { ...e.properties, email: `${who}@example.com` };
        return e;
      };
      const outcomes = await Promise.all([
        ...Array.from({ length: 10 }, () => a.deliver(ev('one'))),
        ...Array.from({ length: 10 }, () => b.deliver(ev('two'))),
      ]);
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);

      const tokenBodies = emu.tokenRequests().map((r) => (r.json as Json).account_id as string);
      expect(tokenBodies.sort()).toEqual(['1111111', '2222222']);
      const recorded = emu.events();
      expect(recorded).toHaveLength(20);
      for (const r of recorded) expect(r.mid).toBe(r.ContactKey === 'one@example.com' ? '1111111' : '2222222');
      expect(recorded.filter((r) => r.mid === '1111111')).toHaveLength(10);
      expect(recorded.filter((r) => r.mid === '2222222')).toHaveLength(10);
    });
  });

  it('a record without account_id and one with it do not share a token', async () => {
    const clients = [{ tenant: TENANT, client_id: 'multi-bu', client_secret: 'bu-secret-value' }];
    await withSetup({ clients }, async ({ emu, engine }) => {
      const plain = engine.createIntegration(recordWith({ client_id: 'multi-bu', client_secret: 'bu-secret-value' }));
      const withMid = engine.createIntegration(recordWith({ client_id: 'multi-bu', client_secret: 'bu-secret-value', account_id: '7281234' }));
      expect((await plain.deliver(event())).status).toBe('delivered');
      expect((await withMid.deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(2);
      expect(emu.events().map((r) => r.mid)).toEqual([null, '7281234']);
    });
  });

  it('different client_secret → different token', async () => {
    const clients = [
      { tenant: TENANT, client_id: 'shared-id', client_secret: 'first-secret-value' },
      { tenant: TENANT, client_id: 'shared-id', client_secret: 'second-secret-value' },
    ];
    await withSetup({ clients }, async ({ emu, engine }) => {
      const a = engine.createIntegration(recordWith({ client_id: 'shared-id', client_secret: 'first-secret-value' }));
      const b = engine.createIntegration(recordWith({ client_id: 'shared-id', client_secret: 'second-secret-value' }));
      expect((await a.deliver(event())).status).toBe('delivered');
      expect((await b.deliver(event())).status).toBe('delivered');
      const tokens = emu.tokenRequests();
      expect(tokens.map((r) => (r.json as Json).client_secret)).toEqual(['first-secret-value', 'second-secret-value']);
      const sends = emu.requests.filter((r) => r.path === EVENTS_PATH);
      expect(bearer(sends[0]!.headers['authorization'])).not.toBe(bearer(sends[1]!.headers['authorization']));
    });
  });

  it('a wrong client_secret never rides on the token fetched with the right one', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const good = engine.createIntegration(referenceRecord());
      expect((await good.deliver(event())).status).toBe('delivered');
      const bad = engine.createIntegration(recordWith({ client_secret: 'wrong-secret-value' }));
      const outcome = await bad.deliver(event());
      expect(outcome.status).toBe('failed');
      expect(outcome.http_status).toBe(401);
      expect(emu.tokenRequests()).toHaveLength(2);
      expect(emu.events()).toHaveLength(1);
    });
  });

  it('the same record twice (two integrations from equal records) shares one token', async () => {
    await withSetup({}, async ({ emu, engine }) => {
      const a = engine.createIntegration(referenceRecord());
      const b = engine.createIntegration(referenceRecord());
      const outcomes = await Promise.all([a.deliver(event()), b.deliver(event()), a.deliver(event()), b.deliver(event())]);
      expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
      expect((await b.deliver(event())).status).toBe('delivered');
      expect(emu.tokenRequests()).toHaveLength(1);
      const tokens = new Set(emu.requests.filter((r) => r.path === EVENTS_PATH).map((r) => bearer(r.headers['authorization'])));
      expect(tokens.size).toBe(1);
    });
  });
});
