/**
 * Issue 17 §4, OpenTelemetry. In this process an SDK with the in-memory exporter is registered, and the
 * engine delivers over loopback to the emulator: span names, attributes and parenting (delivery → HTTP
 * attempts, batch → links), and no secret, token or personal value of the event anywhere in any span. Then
 * across processes: `enqueue --otel` and `worker --otel` export over OTLP/HTTP to a stub collector on
 * loopback, and the worker's delivery span continues the trace the enqueue started (same trace id, the
 * enqueue span as parent), again with no secret in what was exported.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';
import { createRedisQueue, Engine, startWorker } from '../engine/index.js';
import { FAST_RETRY, faultSeed, leadSubmitted, referenceRecord } from './helpers/fixtures.js';
import { startRedis, type RedisServer } from './helpers/redis.js';
import { startCli, type Child } from './helpers/cli-process.js';

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

let redis: RedisServer;
let dir: string;
const emus: Emulator[] = [];
const children: Child[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'signal-otel-'));
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  for (const e of emus) await e.close();
  await redis?.stop();
  await provider.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => exporter.reset());

const SECRET = String(referenceRecord().config.client_secret);
/** Every personal value of the reference event, and the record's client id. */
const PERSONAL = ['jane.doe@example.com', 'jane.doe%40example.com', 'Jane', 'Doe', '+447700900123', '447700900123', 'user-123', 'anon-7f3a', String(referenceRecord().config.client_id)];

function tokenOf(emu: Emulator): string {
  const t = (JSON.parse(emu.tokenRequests()[0]!.response_body) as { access_token: string }).access_token;
  expect(t.length).toBeGreaterThan(8);
  return t;
}

/** Everything a span could carry to a collector, as text. */
function spanText(s: ReadableSpan): string {
  return JSON.stringify({ name: s.name, attributes: s.attributes, events: s.events, links: s.links.map((l) => l.attributes ?? {}), status: s.status, resource: s.resource.attributes });
}

function expectClean(text: string, forbidden: string[]): void {
  for (const f of forbidden) expect(text, `span data contains '${f}'`).not.toContain(f);
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('spans from library delivery (in-memory exporter)', () => {
  it('a delivery span with its HTTP attempts as children, attributes by semantic conventions, nothing secret or personal', async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const engine = await Engine.load({ endpoint: emu.url, retry: FAST_RETRY });
    try {
      const integration = engine.createIntegration(referenceRecord());
      const tracer = trace.getTracer('test');
      // The caller's own span is the delivery span's parent (the active context).
      const outcome = await tracer.startActiveSpan('caller', async (caller) => {
        try {
          return await integration.deliver({ ...leadSubmitted(), event_id: 'evt_otel_1' });
        } finally {
          caller.end();
        }
      });
      expect(outcome.status).toBe('delivered');
      const spans = exporter.getFinishedSpans();
      const caller = byName(spans, 'caller')[0]!;
      const [d] = byName(spans, 'signal.deliver');
      expect(d).toBeDefined();
      expect(d!.kind).toBe(SpanKind.INTERNAL);
      expect(d!.spanContext().traceId).toBe(caller.spanContext().traceId);
      expect(parentOf(d!)).toBe(caller.spanContext().spanId);
      expect(d!.attributes).toMatchObject({
        'signal.integration.id': 'int_welcome_journey',
        'signal.vendor': 'salesforce_marketing_cloud',
        'signal.event.id': 'evt_otel_1',
        'signal.event.name': 'Lead Submitted',
        'signal.outcome.status': 'delivered',
        'signal.http.attempts': 1,
        'signal.possibly_duplicated': false,
        'http.response.status_code': outcome.http_status,
      });
      expect(d!.status.code).not.toBe(SpanStatusCode.ERROR);
      // The token request and the send: CLIENT spans under the delivery, named by method and path template.
      const http = spans.filter((s) => s.kind === SpanKind.CLIENT);
      expect(http.map((s) => s.name).sort()).toEqual(['POST /interaction/v1/events', 'POST /v2/token']);
      for (const s of http) {
        expect(parentOf(s)).toBe(d!.spanContext().spanId);
        expect(s.attributes).toMatchObject({ 'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': Number(new URL(emu.url).port), 'url.scheme': 'http' });
        expect(typeof s.attributes['http.response.status_code']).toBe('number');
      }
      expect(http.find((s) => s.name.includes('token'))!.attributes['signal.stage']).toBe('auth.token');
      expect(http.find((s) => s.name.includes('events'))!.attributes).toMatchObject({ 'signal.stage': 'send', 'url.template': '/interaction/v1/events' });
      expectClean(spans.map(spanText).join('\n'), [SECRET, tokenOf(emu), ...PERSONAL]);
    } finally {
      engine.close();
    }
  });

  it('a failed delivery: retried attempts with their decision, the reason and HTTP status, error status — and still nothing secret', async () => {
    // Two 500s, then the vendor refuses the journey key with 400.
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['some_other_journey'], faults: { server_error: 0.5, seed: faultSeed([true, true, false], 0.5), apply_to: ['events'] } });
    emus.push(emu);
    const engine = await Engine.load({ endpoint: emu.url, retry: { ...FAST_RETRY, base_delay_ms: 10 } });
    try {
      const integration = engine.createIntegration({ ...referenceRecord(), retry: { max_attempts: 4 } });
      const outcome = await integration.deliver({ ...leadSubmitted(), event_id: 'evt_otel_fail' });
      expect(outcome.status).toBe('failed');
      const spans = exporter.getFinishedSpans();
      const d = byName(spans, 'signal.deliver')[0]!;
      expect(parentOf(d)).toBeUndefined(); // no active span: a root
      expect(d.attributes).toMatchObject({ 'signal.outcome.status': 'failed', 'signal.outcome.reason': outcome.reason, 'error.type': outcome.reason, 'signal.http.attempts': outcome.attempts });
      if (outcome.http_status !== undefined) expect(d.attributes['http.response.status_code']).toBe(outcome.http_status);
      expect(d.status.code).toBe(SpanStatusCode.ERROR);
      const sends = spans.filter((s) => s.attributes['signal.stage'] === 'send').sort((a, b) => (a.startTime[0] - b.startTime[0]) * 1e9 + (a.startTime[1] - b.startTime[1]));
      expect(sends.length).toBe(outcome.attempts);
      const statuses = emu.requests.filter((r) => r.host_kind === 'rest').map((r) => r.status);
      expect(sends.map((s) => s.attributes['http.response.status_code'])).toEqual(statuses);
      sends.forEach((s, i) => {
        expect(parentOf(s)).toBe(d.spanContext().spanId);
        expect(s.attributes['signal.decision']).toBe(i < sends.length - 1 ? 'retry' : 'stop');
        if (i > 0) expect(s.attributes['http.request.resend_count']).toBe(i);
        expect(s.status.code).toBe(SpanStatusCode.ERROR);
        expect(s.attributes['error.type']).toBe(String(statuses[i]));
      });
      // The vendor's message and the outcome's message and hint are not on the span (they may echo the event).
      expect(outcome.message).toBeTruthy();
      expectClean(spans.map(spanText).join('\n'), [SECRET, tokenOf(emu), ...PERSONAL, outcome.message!, ...(outcome.vendor_message ? [outcome.vendor_message] : [])]);
    } finally {
      engine.close();
    }
  });

  it('a batch request gets its own span, linked to every event delivery span, its HTTP attempts under it', async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const engine = await Engine.load({ endpoint: emu.url, retry: FAST_RETRY });
    try {
      const integration = engine.createIntegration({ ...referenceRecord(), vendor: 'salesforce_marketing_cloud_journey_batch' });
      const outcomes = await integration.deliverAll([1, 2, 3].map((i) => ({ ...leadSubmitted(), event_id: `evt_otel_b${i}` })));
      expect(outcomes.map((o) => o.status)).toEqual(['delivered', 'delivered', 'delivered']);
      const spans = exporter.getFinishedSpans();
      const deliveries = byName(spans, 'signal.deliver');
      expect(deliveries).toHaveLength(3);
      for (const d of deliveries) expect(d.attributes['signal.batch.size']).toBe(3);
      const batches = byName(spans, 'signal.batch');
      expect(batches).toHaveLength(1);
      const b = batches[0]!;
      expect(parentOf(b)).toBeUndefined();
      expect(b.links.map((l) => l.context.spanId).sort()).toEqual(deliveries.map((d) => d.spanContext().spanId).sort());
      const send = spans.find((s) => s.kind === SpanKind.CLIENT && s.attributes['signal.stage'] === 'send')!;
      expect(parentOf(send)).toBe(b.spanContext().spanId);
      expectClean(spans.map(spanText).join('\n'), [SECRET, tokenOf(emu), ...PERSONAL]);
    } finally {
      engine.close();
    }
  });

  it('enqueue (the library call) carries its trace context to the worker: one trace per event, enqueue → delivery', async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const prefix = 'otel-lib:';
    const record = { ...referenceRecord(), id: 'int_otel_lib' };
    const engine = await Engine.load({ endpoint: emu.url });
    const queue = await createRedisQueue({ url: redis.url, prefix });
    try {
      const scope = engine.createIntegration(record).credentialScope;
      await trace.getTracer('test').startActiveSpan('request', async (req) => {
        await queue.enqueue({ id: record.id, scope }, [{ ...leadSubmitted(), event_id: 'evt_otel_q1' }]);
        req.end();
      });
      // No span active when the worker runs: the context comes from the message alone.
      const outcomes: string[] = [];
      const w = await context.with(context.active(), () =>
        startWorker({ engine, redis: redis.url, keyPrefix: prefix, integrations: [record], endpoint: emu.url, pollMs: 20, onOutcome: (o) => outcomes.push(o.status) }),
      );
      while (!outcomes.length) await new Promise((r) => setTimeout(r, 20));
      await w.stop();
      expect(outcomes).toEqual(['delivered']);
      const spans = exporter.getFinishedSpans();
      const req = byName(spans, 'request')[0]!;
      const enq = byName(spans, 'signal.enqueue')[0]!;
      const d = byName(spans, 'signal.deliver')[0]!;
      expect(enq.kind).toBe(SpanKind.PRODUCER);
      expect(enq.attributes).toMatchObject({ 'signal.integration.id': 'int_otel_lib', 'messaging.batch.message_count': 1 });
      expect(parentOf(enq)).toBe(req.spanContext().spanId);
      expect(d.kind).toBe(SpanKind.CONSUMER);
      expect(d.spanContext().traceId).toBe(req.spanContext().traceId);
      expect(parentOf(d)).toBe(enq.spanContext().spanId);
      expect(d.attributes).toMatchObject({ 'signal.queue.attempt': 1, 'signal.outcome.status': 'delivered', 'signal.integration.id': 'int_otel_lib' });
      expect(typeof d.attributes['messaging.message.id']).toBe('string');
      expectClean(spans.map(spanText).join('\n'), [SECRET, tokenOf(emu), ...PERSONAL]);
    } finally {
      await queue.close();
      engine.close();
    }
  });
});

/** A stub OTLP/HTTP collector: keeps every JSON export request's body. */
async function startCollector(): Promise<{ url: string; bodies: string[]; close: () => Promise<void> }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') bodies.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, bodies, close: () => new Promise((r) => server.close(() => r())) };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

function exported(bodies: string[]): { service: string; span: OtlpSpan }[] {
  const out: { service: string; span: OtlpSpan }[] = [];
  for (const b of bodies) {
    const doc = JSON.parse(b) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
    for (const rs of doc.resourceSpans) {
      const service = String(Object.values(rs.resource.attributes.find((a) => a.key === 'service.name')?.value ?? {})[0]);
      for (const ss of rs.scopeSpans) for (const span of ss.spans) out.push({ service, span });
    }
  }
  return out;
}

const attr = (s: OtlpSpan, key: string): unknown => Object.values(s.attributes.find((a) => a.key === key)?.value ?? {})[0];

function cli(args: string[], env: Record<string, string>): Child {
  const c = startCli(args, { env });
  children.push(c);
  return c;
}

describe('worker --otel across processes (OTLP/HTTP to a stub collector)', () => {
  it("the worker's delivery span continues the trace `enqueue --otel` started, and carries no secret", async () => {
    const emu = await startMarketingCloudEmulator({ event_definition_keys: ['datafly_lead_submitted'] });
    emus.push(emu);
    const collector = await startCollector();
    try {
      const prefix = 'otel-cli:';
      const record = { ...referenceRecord(), id: 'int_otel_cli' };
      const recordFile = join(dir, 'otel-record.json');
      writeFileSync(recordFile, JSON.stringify(record));
      const eventsFile = join(dir, 'otel-events.ndjson');
      writeFileSync(eventsFile, JSON.stringify({ ...leadSubmitted(), event_id: 'evt_otel_x1' }) + '\n');
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
      const enq = cli(['enqueue', '--redis', redis.url, '--key-prefix', prefix, '--integration', recordFile, '--events', eventsFile, '--otel'], { ...env, OTEL_SERVICE_NAME: 'test-producer' });
      expect(await enq.exit, enq.err()).toBe(0);
      // Without --otel: the standard variable asks for the exporter.
      const w = cli(['worker', '--redis', redis.url, '--key-prefix', prefix, '--integration', recordFile, '--endpoint', emu.url], { ...env, OTEL_TRACES_EXPORTER: 'otlp', OTEL_SERVICE_NAME: 'test-worker' });
      await w.waitFor((out) => out.includes('delivered'));
      w.proc.kill('SIGTERM');
      expect(await w.exit, w.err()).toBe(0);

      const spans = exported(collector.bodies);
      const enqSpan = spans.find((s) => s.span.name === 'signal.enqueue');
      const delivery = spans.find((s) => s.span.name === 'signal.deliver');
      expect(enqSpan?.service).toBe('test-producer');
      expect(delivery?.service).toBe('test-worker');
      expect(delivery!.span.traceId).toBe(enqSpan!.span.traceId);
      expect(delivery!.span.parentSpanId).toBe(enqSpan!.span.spanId);
      expect(attr(delivery!.span, 'signal.event.id')).toBe('evt_otel_x1');
      expect(attr(delivery!.span, 'signal.outcome.status')).toBe('delivered');
      const attempts = spans.filter((s) => s.span.parentSpanId === delivery!.span.spanId);
      expect(attempts.map((s) => s.span.name).sort()).toEqual(['POST /interaction/v1/events', 'POST /v2/token']);
      expectClean(collector.bodies.join('\n'), [SECRET, tokenOf(emu), ...PERSONAL]);
    } finally {
      await collector.close();
    }
  });
});
