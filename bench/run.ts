/**
 * `npm run bench`: speed as ratios against baselines measured in the same run (shared, noisy machines
 * make absolute numbers meaningless). Everything runs on loopback against the local emulator.
 *
 * 1. mapping   — building the journey body for many events: the engine's compiled mappings (plain
 *                paths bypass JSONata) vs evaluating every leaf with JSONata.
 * 2. delivery  — the engine delivering events (mapping, checks, token cache, rules, retries wired in)
 *                vs raw got POSTs of precomputed bodies with the same timeouts and concurrency: the
 *                engine's own overhead. The emulator shares the process, so both include its cost.
 * 3. batching  — the batched journey spec vs the single-event spec for the same events.
 */
import { readFileSync } from 'node:fs';
import jsonata from 'jsonata';
import got from 'got';
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { Engine } from '../engine/index.js';
import { evaluateMapping, type CompiledMapping } from '../engine/compile/mapping.js';
import { packagePath } from '../engine/paths.js';

const N_MAP = Number(process.env.BENCH_MAP ?? 20_000);
const N_SEND = Number(process.env.BENCH_SEND ?? 3_000);
const CONCURRENCY = 64;

const record = JSON.parse(readFileSync(packagePath('examples', 'integration.json'), 'utf8')) as Record<string, any>;
const template = JSON.parse(readFileSync(packagePath('examples', 'lead-submitted.json'), 'utf8')) as Record<string, any>;
const events = (n: number) => Array.from({ length: n }, (_, i) => ({ ...template, event_id: `evt_bench_${i}` }));

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Best of three: the least disturbed run is the closest to the code's own cost. */
async function best(fn: () => Promise<unknown>): Promise<number> {
  const runs = [await time(fn), await time(fn), await time(fn)];
  return Math.min(...runs);
}

/** The baseline: the same mapping, every leaf through the JSONata interpreter. */
function viaJsonata(node: CompiledMapping): (input: unknown, b: Record<string, unknown>) => Promise<unknown> {
  if (node.kind === 'const') return async () => node.value;
  if (node.kind === 'expr') {
    const e = jsonata(node.expr.source);
    return (input, b) => e.evaluate(input, b);
  }
  const entries = node.entries.map((en) => ({ ...en, run: viaJsonata(en.node) }));
  return async (input, b) => {
    const out: Record<string, unknown> = {};
    for (const en of entries) {
      const v = await en.run(input, b);
      if (v === undefined) continue;
      if (en.spread) Object.assign(out, v);
      else out[en.key] = v;
    }
    return out;
  };
}

const rows: [string, string, string, string][] = [];
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

const engine = await Engine.load();
const spec = engine.specs.get('salesforce_marketing_cloud')!;
const body = spec.send.request.body!;
const fieldsMapping = spec.presets.get('retail')!.events.get('Lead Submitted')!;
const mapEvents = events(N_MAP);
const bindings = (e: Record<string, any>, fields: unknown) => ({ config: record.config, event: e, fields });

const engineMap = await best(async () => {
  for (const e of mapEvents) await evaluateMapping(body, e, bindings(e, await evaluateMapping(fieldsMapping, e, { config: record.config, event: e })));
});
const slowBody = viaJsonata(body);
const slowFields = viaJsonata(fieldsMapping);
const jsonataMap = await best(async () => {
  for (const e of mapEvents) await slowBody(e, bindings(e, await slowFields(e, { config: record.config, event: e })));
});
rows.push(['mapping', `${N_MAP} bodies`, `engine ${engineMap.toFixed(0)} ms vs all-JSONata ${jsonataMap.toFixed(0)} ms`, `${ratio(jsonataMap, engineMap)} faster`]);

const emu = await startMarketingCloudEmulator();
try {
  const local = await Engine.load({ endpoint: emu.url });
  const single = local.createIntegration(record);
  const sendEvents = events(N_SEND);
  await single.deliverAll(events(50), { concurrency: CONCURRENCY }); // warm up: token, sockets, JIT
  const engineSend = await best(() => single.deliverAll(sendEvents, { concurrency: CONCURRENCY }));

  const previews = await single.preview(template);
  const wire = previews.at(-1)!;
  const token = (emu.requests.find((r) => r.path === '/v2/token' && r.status === 200)?.response_body ?? '{}');
  const accessToken = (JSON.parse(token) as { access_token?: string }).access_token ?? '';
  // The same transport settings the engine must use (keep-alive, the spec's timeouts), none of its work.
  const client = got.extend({
    retry: { limit: 0 },
    throwHttpErrors: false,
    timeout: { connect: spec.timeouts.connect_ms, response: spec.timeouts.response_ms, request: spec.timeouts.connect_ms + spec.timeouts.response_ms },
    agent: { http: new (await import('node:http')).Agent({ keepAlive: true, maxSockets: 128 }) },
  });
  const rawSend = await best(async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < sendEvents.length) {
          next++;
          await client.post(wire.url, { headers: { ...wire.headers, Authorization: `Bearer ${accessToken}` }, body: wire.body ?? '' });
        }
      }),
    );
  });
  rows.push(['delivery', `${N_SEND} events, ${CONCURRENCY} in flight`, `engine ${engineSend.toFixed(0)} ms vs raw got ${rawSend.toFixed(0)} ms`, `${ratio(engineSend, rawSend)} the raw cost`]);

  const batched = local.createIntegration({ ...record, vendor: 'salesforce_marketing_cloud_journey_batch' });
  emu.reset();
  const batchTime = await time(() => batched.deliverAll(sendEvents));
  const batchRequests = emu.requests.filter((r) => r.path === '/interaction/v1/async/events').length;
  emu.reset();
  const singleTime = await time(() => single.deliverAll(sendEvents, { concurrency: CONCURRENCY }));
  const singleRequests = emu.requests.filter((r) => r.path === '/interaction/v1/events').length;
  rows.push([
    'batching',
    `${N_SEND} journey entries`,
    `${batchRequests} requests in ${batchTime.toFixed(0)} ms vs ${singleRequests} in ${singleTime.toFixed(0)} ms`,
    `${ratio(singleRequests, batchRequests)} fewer requests, ${ratio(singleTime, batchTime)} faster`,
  ]);
  local.close();
} finally {
  engine.close();
  await emu.close();
}

const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), 8));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
