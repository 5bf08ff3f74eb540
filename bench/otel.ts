/**
 * `npm run bench` (after bench/trace.ts): what OpenTelemetry spans cost (issue 17 §4). `deliver` per event
 * at 32 in flight against the emulator (in this process), first with no SDK registered (the engine's spans
 * are no-ops: the default), then with an SDK registered (NodeTracerProvider, BatchSpanProcessor,
 * InMemorySpanExporter: every span recorded and batched, nothing sent over a network). A process of its own:
 * an SDK, once registered, cannot be unregistered for the engine's tracer, so the rounds without one run
 * first. Reported: events/s per round (min–max over the rounds) and the ratio of the bests.
 *
 * BENCH_OTEL (events per round, default 2000) scales it.
 */
import { startMarketingCloudEmulator } from '../emulator/marketing-cloud.js';
import { Engine } from '../engine/index.js';
import { benchEvents, benchRecord, deliverRate } from './events.js';

const N = Number(process.env.BENCH_OTEL ?? 2_000);
const ROUNDS = 4;
const record = benchRecord;
const events = (tag: string) => benchEvents(N, tag);

const emu = await startMarketingCloudEmulator();
const engine = await Engine.load();
try {
  const integration = engine.createIntegration(record, { endpoint: emu.url });
  const round = (tag: string): Promise<number> => deliverRate((e) => integration.deliver(e), events(tag));
  const rounds = async (tag: string): Promise<number[]> => {
    await round(`${tag}_warm`);
    const rates: number[] = [];
    for (let r = 0; r < ROUNDS; r++) rates.push(await round(`${tag}_${r}`));
    return rates;
  };
  const off = await rounds('off');

  const { NodeTracerProvider, BatchSpanProcessor, InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-node');
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, maxExportBatchSize: 4_096, scheduledDelayMillis: 200 })] });
  provider.register();
  const on = await rounds('on');
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans().length;
  await provider.shutdown();
  // A delivery span and a send span per event, plus the token request once.
  if (spans < N * 2) throw new Error(`only ${spans} spans were recorded`);

  const range = (xs: number[]) => `${Math.round(Math.min(...xs))}–${Math.round(Math.max(...xs))}`;
  const best = (xs: number[]) => Math.max(...xs);
  console.log(
    `otel · engine: ${range(off)} events/s with no SDK registered, ${range(on)} with an SDK recording every span (batch processor, in-memory exporter): best ${(best(on) / best(off)).toFixed(2)}×, ${ROUNDS} rounds of ${N} each; ${spans} spans recorded`,
  );
} finally {
  engine.close();
  await emu.close();
}
