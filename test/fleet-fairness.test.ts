/**
 * One worker, many integrations: a vendor that hangs holds only its own share (the others keep flowing),
 * leases are taken only for what can be sent, the worker-wide cap holds, and a vendor in outage opens its
 * circuit (its events wait, unspent) and closes it again on a successful probe. Real Redis, the emulator
 * behind a loopback proxy that hangs one tenant's event requests.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, Engine, startWorker, type FleetOutcome, type RedisQueue, type IntegrationRecord } from '../engine/index.js';
import { CLOSED, circuitAfter, circuitAllows, isOutage } from '../engine/policy/circuit.js';
import { leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { until as untilEvery } from './helpers/fleet.js';

const until = <T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> => untilEvery(what, ms, probe, 50);

let redis: RedisServer;
let emu: Emulator;
let proxy: Server;
let proxyUrl: string;
const held: ServerResponse[] = [];
let hungRequests = 0;
let queue: RedisQueue;

const HANG_TENANT = 'mc-hangingvendor';

beforeAll(async () => {
  redis = await startRedis();
  emu = await startMarketingCloudEmulator({
    clients: [
      { tenant: 'mc-abc123xyz', client_id: 'abc123clientid', client_secret: 'shh-secret-value' },
      { tenant: HANG_TENANT, client_id: 'hangclient', client_secret: 'hang-secret' },
    ],
  });
  const target = new URL(emu.url);
  // Forwards to the emulator; event requests for the hanging tenant are held, never answered.
  proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const host = String(req.headers['x-forwarded-host'] ?? '');
    if (host.startsWith(HANG_TENANT) && req.url?.startsWith('/interaction/')) {
      hungRequests++;
      req.resume();
      held.push(res);
      return;
    }
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  queue = await createRedisQueue({ url: redis.url });
});

afterAll(async () => {
  for (const res of held) res.destroy();
  await queue?.close();
  await new Promise((r) => proxy?.close(r));
  proxy?.closeAllConnections?.();
  await emu?.close();
  await redis?.stop();
});

const events = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const e = leadSubmitted();
    e.event_id = `${prefix}_${i}`;
    e.properties = { ...e.properties, email: `${prefix}${i}@example.com` };
    return e;
  });

describe('fair and bounded: many integrations on one worker', () => {
  it('a hanging vendor holds only its own share; the healthy integration keeps flowing; leases only for what can be sent', { timeout: 60_000 }, async () => {
    const engine = await Engine.load();
    const hanging = { ...referenceRecord(), id: 'int_hang', name: 'Hanging vendor', config: { ...referenceRecord().config, tenant_subdomain: HANG_TENANT, client_id: 'hangclient', client_secret: 'hang-secret' } };
    const healthy = { ...referenceRecord(), id: 'int_healthy', name: 'Healthy vendor' };
    const scopeOf = (r: unknown) => engine.createIntegration(r as IntegrationRecord).credentialScope;
    await queue.enqueue({ id: 'int_hang', scope: scopeOf(hanging) }, events('evt_hang', 20));
    await queue.enqueue({ id: 'int_healthy', scope: scopeOf(healthy) }, events('evt_ok', 30));
    const outcomes: FleetOutcome[] = [];
    const w = await startWorker({ engine, redis: redis.url, integrations: [hanging, healthy], endpoint: proxyUrl, concurrency: 4, maxInFlight: 6, pollMs: 100, drainTimeoutMs: 0, onOutcome: (o) => outcomes.push(o) });
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, w.inFlight())), 5);
    try {
      await until('the healthy integration drained', 30_000, async () => ((await queue.status('int_healthy')).delivered === 30 ? true : undefined));
      // The hanging vendor holds its window (4), no more: the rest of its events were never leased.
      expect(w.inFlight('int_hang')).toBe(4);
      expect(hungRequests).toBe(4);
      expect(await queue.status('int_hang')).toMatchObject({ in_flight: 4, waiting: 16, delivered: 0 });
      expect(outcomes.filter((o) => o.integration_id === 'int_healthy' && o.disposition === 'delivered')).toHaveLength(30);
      expect(most).toBeLessThanOrEqual(6); // the worker-wide cap
    } finally {
      clearInterval(watch);
      await w.stop(); // hands the hung ones back
      engine.close();
    }
    expect(await queue.status('int_hang')).toMatchObject({ in_flight: 0, waiting: 20 });
  });

  it('a vendor in outage opens its circuit: its events wait unspent; a successful probe closes it and they flow', { timeout: 60_000 }, async () => {
    const engine = await Engine.load();
    const rec = { ...referenceRecord(), id: 'int_outage', name: 'Outage', retry: { max_attempts: 1, queue: { max_attempts: 5, backoff_ms: 3_600_000 } } };
    await queue.enqueue({ id: 'int_outage', scope: engine.createIntegration(rec).credentialScope }, events('evt_out', 12));
    emu.reset();
    emu.setFaults({ unavailable: 1, apply_to: ['events'] });
    const outcomes: FleetOutcome[] = [];
    const w = await startWorker({ engine, redis: redis.url, integrations: [rec], endpoint: emu.url, concurrency: 1, pollMs: 100, circuit: { failures: 3, open_ms: 60_000 }, onOutcome: (o) => outcomes.push(o) });
    try {
      // The circuit opens as the third outcome is known, just before that attempt is settled: wait for both.
      await until('the circuit to open', 20_000, async () => (w.circuit('int_outage') === 'open' && outcomes.length >= 3 ? true : undefined));
      const sentDuringOutage = emu.requests.filter((r) => r.path.startsWith('/interaction/')).length;
      // Three attempts opened it; the other nine wait on the queue, not one attempt spent on them.
      expect(outcomes.map((o) => [o.disposition, o.http_status])).toEqual([
        ['retry_scheduled', 503],
        ['retry_scheduled', 503],
        ['retry_scheduled', 503],
      ]);
      expect(await queue.status('int_outage')).toMatchObject({ waiting: 9, in_flight: 0, scheduled_retry: 3, failed: 3 });
      expect(sentDuringOutage).toBeLessThanOrEqual(3);
    } finally {
      await w.stop();
    }
    // A worker whose circuit reopens quickly: the vendor is back, the probe succeeds, the circuit closes.
    emu.setFaults({});
    const w2 = await startWorker({ engine, redis: redis.url, integrations: [rec], endpoint: emu.url, concurrency: 2, pollMs: 100, circuit: { failures: 3, open_ms: 100 } });
    try {
      await until('the waiting events delivered', 20_000, async () => ((await queue.status('int_outage')).delivered === 9 ? true : undefined));
      expect(w2.circuit('int_outage')).toBe('closed');
    } finally {
      await w2.stop();
      engine.close();
    }
  });
});

describe('circuit policy', () => {
  const policy = { failures: 3, open_ms: 1_000, max_open_ms: 3_000 };
  const outage = { status: 'failed' as const, reason: 'http_error' as const, retryable: true, http_status: 503 };

  it('opens after N outage failures in a row, probes once when due, doubles the open period up to the max', () => {
    let s = CLOSED;
    s = circuitAfter(s, policy, 0, true);
    s = circuitAfter(s, policy, 0, true);
    expect(s.state).toBe('closed');
    s = circuitAfter(s, policy, 0, true);
    expect(s).toMatchObject({ state: 'open', until: 1_000 });
    expect(circuitAllows(s, 999).max).toBe(0);
    const probe = circuitAllows(s, 1_000);
    expect(probe).toMatchObject({ max: 1, state: { state: 'half_open' } });
    s = circuitAfter(probe.state, policy, 1_000, true);
    expect(s).toMatchObject({ state: 'open', until: 3_000 });
    s = circuitAfter(circuitAllows(s, 3_000).state, policy, 3_000, true);
    expect(s).toMatchObject({ state: 'open', until: 6_000 }); // capped at max_open_ms
    expect(circuitAfter(circuitAllows(s, 6_000).state, policy, 6_000, false)).toEqual(CLOSED);
  });

  it('counts only what says the vendor is down', () => {
    expect(isOutage(outage)).toBe(true);
    expect(isOutage({ ...outage, http_status: 429 })).toBe(true);
    expect(isOutage({ status: 'failed', reason: 'network_error', retryable: true })).toBe(true);
    expect(isOutage({ ...outage, http_status: 400, retryable: false })).toBe(false);
    expect(isOutage({ status: 'failed', reason: 'check_failed', retryable: false })).toBe(false);
    expect(isOutage({ status: 'delivered' })).toBe(false);
    // A success in between resets the count.
    let s = circuitAfter(circuitAfter(CLOSED, policy, 0, true), policy, 0, true);
    s = circuitAfter(s, policy, 0, false);
    expect(circuitAfter(s, policy, 0, true).state).toBe('closed');
  });
});
