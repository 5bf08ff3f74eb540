/**
 * `--otel` (worker, enqueue): register an OpenTelemetry SDK that exports the engine's spans (engine/run/otel.ts)
 * over OTLP/HTTP (JSON). The SDK packages are imported only here, only when asked: without `--otel` the
 * commands load none of them and the engine's spans stay no-ops.
 *
 * Configured the standard way, by the SDK itself: OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT),
 * OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG),
 * OTEL_BSP_*. OTEL_TRACES_EXPORTER=otlp turns it on without the flag; OTEL_SDK_DISABLED=true turns it off.
 * Context propagates as W3C `traceparent` (the SDK's default propagator).
 */
import { CliError, EXIT } from './io.js';

export interface Otel {
  /** Ends every span still buffered: exported (or given up on) before this resolves. */
  shutdown(): Promise<void>;
}

export interface OtelLog {
  warn(obj: object, msg: string): void;
}

/** Whether to export: `--otel`, or OTEL_TRACES_EXPORTER=otlp; never with OTEL_SDK_DISABLED=true. */
export function otelWanted(flag: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  return Boolean(flag) || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'otlp';
}

/** Register the SDK globally with an OTLP/HTTP exporter; `service` is the default service.name (OTEL_SERVICE_NAME wins). */
export async function startOtel(service: string, log?: OtelLog): Promise<Otel> {
  let sdk: [typeof import('@opentelemetry/sdk-trace-node'), typeof import('@opentelemetry/exporter-trace-otlp-http'), typeof import('@opentelemetry/resources'), typeof import('@opentelemetry/api')];
  try {
    sdk = await Promise.all([import('@opentelemetry/sdk-trace-node'), import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/resources'), import('@opentelemetry/api')]);
  } catch (e) {
    throw new CliError(`--otel: the OpenTelemetry SDK could not be loaded (${(e as Error).message})`, EXIT.usage);
  }
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { defaultResource, detectResources, envDetector, resourceFromAttributes }, api] = sdk;
  const { version } = await import('./run.js');
  // Later resources win: the SDK's defaults, ours, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES.
  const resource = defaultResource()
    .merge(resourceFromAttributes({ 'service.name': service, 'service.version': version() }))
    .merge(detectResources({ detectors: [envDetector] }));
  if (log) {
    // An exporter that cannot reach its collector says so (warnings and errors only), on the command's log.
    const warn = (msg: string) => log.warn({}, `opentelemetry: ${msg}`);
    api.diag.setLogger({ error: warn, warn, info: () => undefined, debug: () => undefined, verbose: () => undefined }, api.DiagLogLevel.WARN);
  }
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  provider.register();
  return {
    shutdown: async () => {
      await provider.shutdown().catch((e: unknown) => log?.warn({ err: (e as Error).message }, 'opentelemetry: exporting the last spans failed'));
    },
  };
}
