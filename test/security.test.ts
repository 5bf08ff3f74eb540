/**
 * Security, end to end against the emulator: hostile field_mappings cannot hang or crash the engine,
 * event data and mappings cannot reach Object.prototype, a spec cannot send outside its allowed hosts,
 * and no outcome (nor its detail) ever carries a client secret or an access token.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Outcome, OutcomeDetail } from '../engine/index.js';
import { BUNDLED_SPECS_DIR, Engine, SpecError } from '../engine/index.js';
import { event, leadSubmitted, referenceRecord, withSetup, within, type Json } from './helpers/fixtures.js';

const TENANT = 'mc-abc123xyz';
const EVENTS_PATH = '/interaction/v1/events';

function recordWith(config: Json = {}, extra: Json = {}): Json {
  const r = referenceRecord();
  return { ...r, ...extra, config: { ...r.config, ...config } };
}

describe('hostile field_mappings', () => {
  const bombs: [string, string][] = [
    ['endless recursion', '($f := function($x){ $f($x) }; $f(1))'],
    ['a ten-million-item sequence', '$count([1..10000000])'],
    ['a nested $map of 10^10 steps', '$count($map([1..100000], function($a){ $map([1..100000], function($b){ $a * $b }) }))'],
  ];

  it('each fails its own event with mapping_error (nothing sent), and other integrations keep delivering', async () => {
    await withSetup({}, {}, async ({ emu, engine }) => {
      const normal = engine.createIntegration(recordWith({}, { name: 'normal' }));
      for (const [what, expr] of bombs) {
        const hostile = engine.createIntegration(recordWith({}, { name: `hostile: ${what}`, field_mappings: { 'Data.x': expr } }));
        const e = event();
        // Alongside a normal delivery: the hostile one must not starve it.
        const [bad, good] = await within(10_000, Promise.all([hostile.deliver(e), normal.deliver(event())]), what);
        expect(bad).toMatchObject({ status: 'failed', reason: 'mapping_error', retryable: false, attempts: 0, event_id: e.event_id });
        expect(bad.message).toMatch(/mapping failed/);
        expect(good.status).toBe('delivered');
        // And the next normal event, after it, too.
        expect((await within(10_000, normal.deliver(event()))).status).toBe('delivered');
      }
      // Only the normal integration's events reached the vendor.
      const sends = emu.requests.filter((r) => r.path === EVENTS_PATH);
      expect(sends).toHaveLength(bombs.length * 2);
      expect(sends.every((r) => (r.json as Json).Data.x === undefined)).toBe(true);
    });
  });
});

describe('prototype pollution', () => {
  afterEach(() => {
    // Never let a failure here leak into other tests of this file.
    delete (Object.prototype as Json).polluted;
  });

  it('event data with __proto__ keys and field_mappings aimed at __proto__/constructor do not reach Object.prototype', async () => {
    const base = leadSubmitted();
    // JSON.parse makes "__proto__" an own data property, as an event arriving over the wire would have it.
    const hostileEvent = (i: number): Json =>
      JSON.parse(
        JSON.stringify({ ...base, event_id: `evt_proto_${i}` })
          .replace('"properties":{', '"properties":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},')
          .replace('"type":', '"__proto__":{"polluted":true},"type":'),
      ) as Json;
    expect(Object.hasOwn(hostileEvent(0).properties, '__proto__')).toBe(true);
    // And an ordinary event, whose objects inherit from Object.prototype (so `x.__proto__` IS the prototype).
    const plainEvent = (i: number): Json => ({ ...base, event_id: `evt_plain_${i}`, properties: { ...base.properties } });

    const mappings: Json[] = [
      {},
      { 'Data.props': 'properties' },
      { 'Data.props': 'properties', 'Data.props.__proto__.polluted': '"yes"' },
      { 'Data.props': 'properties', 'Data.props.constructor.prototype.polluted': '"yes"' },
      { 'Data.o': '{"a": 1}', 'Data.o.__proto__.polluted': '"yes"' },
      { '__proto__.polluted': '"yes"' },
      { 'constructor.prototype.polluted': '"yes"' },
      { 'Data.__proto__.polluted': '"yes"' },
      { 'Data.p': 'properties.__proto__' },
      { 'Data.m': '$merge([{}, properties])' },
      { 'Data.s': '$spread(properties)' },
      JSON.parse('{"__proto__": "{\\"polluted\\": true}", "Data.__proto__": "properties"}') as Json,
    ];
    await withSetup({}, {}, async ({ engine }) => {
      const outcomes: Outcome[] = [];
      // Every (mapping, event) that reached Object.prototype; cleaned up after each so all are tried.
      const polluters: string[] = [];
      for (const [i, field_mappings] of mappings.entries()) {
        // A path through a prototype property is refused when the record is checked, naming the path.
        const forbidden = Object.keys(field_mappings).filter((k) => k.split('.').some((seg) => ['__proto__', 'constructor', 'prototype'].includes(seg)));
        if (forbidden.length) {
          expect(() => engine.createIntegration(recordWith({}, { name: `proto ${i}`, field_mappings }))).toThrow(/may not name __proto__, constructor or prototype/);
          continue;
        }
        const integration = engine.createIntegration(recordWith({}, { name: `proto ${i}`, field_mappings }));
        for (const [kind, e] of [['event with __proto__ keys', hostileEvent(i)], ['plain event', plainEvent(i)]] as const) {
          outcomes.push(await within(10_000, integration.deliver(e)));
          if (Object.hasOwn(Object.prototype, 'polluted') || ({} as Json).polluted !== undefined) {
            polluters.push(`${JSON.stringify(field_mappings)} with a ${kind}`);
            delete (Object.prototype as Json).polluted;
          }
        }
      }
      expect(polluters).toEqual([]);
      expect(({} as Json).polluted).toBeUndefined();
      // Nothing crashed: every event got an ordinary outcome.
      for (const o of outcomes) expect(['delivered', 'failed']).toContain(o.status);
      expect(outcomes.filter((o) => o.reason === 'internal_error')).toEqual([]);
    });
  });
});

describe("the caller's event is read-only", () => {
  it("one integration's field_mappings never write into the event another integration then receives", async () => {
    await withSetup({}, {}, async ({ emu, engine }) => {
      const writer = engine.createIntegration(recordWith({}, { name: 'writer', field_mappings: { 'Data.props': 'properties', 'Data.props.injected': '"from writer"' } }));
      const reader = engine.createIntegration(recordWith({}, { name: 'reader', field_mappings: { 'Data.props': 'properties' } }));
      const e = event();
      const snapshot = structuredClone(e);

      expect((await within(10_000, writer.deliver(e))).status).toBe('delivered');
      expect(e).toEqual(snapshot);
      expect((await within(10_000, reader.deliver(e))).status).toBe('delivered');
      const [, readerBody] = emu.requests.filter((r) => r.path === EVENTS_PATH).map((r) => r.json as Json);
      expect(readerBody!.Data.props).toEqual(snapshot.properties);
    });
  });
});

describe('allowed hosts', () => {
  /**
   * The bundled journey-entry spec (and the partials it may extend) copied to a temp dir, with its own
   * `allowed_hosts` set to `hosts` (replacing the key if the file has it, else overriding the inherited one).
   */
  /**
   * The Marketing Cloud spec with other allowed_hosts. With `dynamic`, each host is one expression
   * (`{$config.tenant_subdomain & ".auth..."}`), which load-time checks cannot judge, so the run-time
   * guard is what refuses it; without, `validate`/load refuses the spec already.
   */
  async function specDirWith(hosts: string[], dynamic = true): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'signal-spec-'));
    const dynamicHost = (s: string) => (dynamic ? s.replace(/https:\/\/\{\$config\.tenant_subdomain\}(\.(?:auth|rest)\.marketingcloudapis\.com)/g, 'https://{$config.tenant_subdomain & "$1"}') : s);
    await mkdir(join(dir, 'partials'));
    const partial = 'salesforce_marketing_cloud_auth.yaml';
    await writeFile(join(dir, 'partials', partial), dynamicHost(await readFile(join(BUNDLED_SPECS_DIR, 'partials', partial), 'utf8')));
    const text = dynamicHost(await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud.yaml'), 'utf8'));
    const block = `allowed_hosts:\n${hosts.map((h) => `  - "${h}"\n`).join('')}`;
    const existing = /^allowed_hosts:\n(?:[ \t]+-.*\n)+/m;
    await writeFile(join(dir, 'salesforce_marketing_cloud.yaml'), existing.test(text) ? text.replace(existing, block) : `${text.trimEnd()}\n\n${block}`);
    return dir;
  }

  it('a literal host outside allowed_hosts is refused when the spec loads (validate reports it)', async () => {
    const dir = await specDirWith(['*.rest.marketingcloudapis.com'], false);
    try {
      const err = await Engine.load({ specs: dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SpecError);
      expect((err as SpecError).diagnostics.map((d) => d.message)).toEqual([expect.stringMatching(/^host \{\$config\.tenant_subdomain\}\.auth\.marketingcloudapis\.com is not in allowed_hosts .*host_not_allowed/)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an auth URL outside allowed_hosts is refused before sending: host_not_allowed, the vendor receives nothing', async () => {
    const dir = await specDirWith(['*.rest.marketingcloudapis.com']);
    try {
      await withSetup({}, { specs: dir }, async ({ emu, engine }) => {
        const outcome = await within(10_000, engine.createIntegration(referenceRecord()).deliver(event()));
        expect(outcome).toMatchObject({ status: 'failed', reason: 'host_not_allowed', retryable: false });
        expect(outcome.message).toContain(`${TENANT}.auth.marketingcloudapis.com`);
        expect(emu.requests).toHaveLength(0);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a send URL outside allowed_hosts is refused too, after a legitimate token request', async () => {
    const dir = await specDirWith(['*.auth.marketingcloudapis.com']);
    try {
      await withSetup({}, { specs: dir }, async ({ emu, engine }) => {
        const outcome = await within(10_000, engine.createIntegration(referenceRecord()).deliver(event()));
        expect(outcome).toMatchObject({ status: 'failed', reason: 'host_not_allowed' });
        expect(emu.requests.map((r) => r.path)).toEqual(['/v2/token']);
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('secrets never appear in outcomes', () => {
  it('a mixed run (delivered, auth 401, 400, vendor echo, 429s, resets, re-auth): no outcome or detail contains a secret or a token', async () => {
    const SECRET = 'S3CRET-never-print-1234';
    const WRONG = 'WR0NG-S3CRET-never-print-5678';
    const seen: [Outcome, OutcomeDetail][] = [];
    const emuOpts = {
      clients: [{ tenant: TENANT, client_id: 'abc123clientid', client_secret: SECRET }],
      faults: {
        seed: 7,
        rate_limit_with_retry_after: 0.1,
        retry_after_seconds: 0,
        rate_limit_blocked: 0.1,
        server_error: 0.05,
        reset_before_record: 0.05,
        reset_after_record: 0.05,
        apply_to: ['events' as const],
      },
    };
    await withSetup(emuOpts, { onOutcome: (o, d) => seen.push([o, d]) }, async ({ emu, engine }) => {
      const good = engine.createIntegration(recordWith({ client_secret: SECRET }, { name: 'good' }));
      const wrong = engine.createIntegration(recordWith({ client_secret: WRONG }, { name: 'wrong secret' }));
      const badKey = engine.createIntegration(recordWith({ client_secret: SECRET, event_definition_key: 'no_such_event' }, { name: 'bad key' }));
      // The vendor echoes an unknown EventDefinitionKey in its error message: here that is the secret.
      const echo = engine.createIntegration(recordWith({ client_secret: SECRET }, { name: 'echo', field_mappings: { EventDefinitionKey: '$config.client_secret' } }));

      const run = (integration: typeof good, n: number) => Promise.all(Array.from({ length: n }, () => integration.deliver(event())));
      await within(30_000, Promise.all([run(good, 30), run(wrong, 5), run(badKey, 5), run(echo, 5)]));
      emu.revokeTokens(); // the next sends get 401 and re-authenticate
      await within(30_000, Promise.all([run(good, 20), run(echo, 3)]));

      const outcomes = seen.map(([o]) => o);
      expect(outcomes).toHaveLength(68);
      const statuses = new Set(outcomes.map((o) => `${o.status}:${o.http_status ?? ''}`));
      expect(statuses).toContain('delivered:201');
      expect(statuses).toContain('failed:401');
      expect(statuses).toContain('failed:400');
      expect(emu.stats.rate_limited).toBeGreaterThan(0);
      expect(emu.stats.resets_before_record + emu.stats.resets_after_record).toBeGreaterThan(0);
      expect(emu.stats.unauthorized).toBeGreaterThan(5); // the wrong secret's 401 and the revoked tokens'
      // The vendor really did send the secret back, so redaction had something to do.
      expect(emu.requests.some((r) => r.response_body.includes(SECRET))).toBe(true);
      const echoed = outcomes.filter((o) => o.integration === 'echo');
      expect(echoed.every((o) => o.status === 'failed' && o.http_status === 400 && typeof o.vendor_message === 'string')).toBe(true);

      const tokens = emu
        .tokenRequests()
        .filter((r) => r.status === 200)
        .map((r) => (JSON.parse(r.response_body) as Json).access_token as string);
      expect(tokens.length).toBeGreaterThanOrEqual(2);
      const forbidden = [SECRET, WRONG, ...tokens];
      for (const [o, d] of seen) {
        const text = JSON.stringify(o) + JSON.stringify(d);
        for (const s of forbidden) expect(text.includes(s), `${o.integration} outcome ${o.event_id} contains a secret`).toBe(false);
      }
    });
  });
});
