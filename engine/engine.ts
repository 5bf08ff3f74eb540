/**
 * The library the Signal runtime boots with: load every spec once, create integrations from records,
 * deliver events concurrently, and observe outcomes through a hook or the `outcome` event.
 */
import { EventEmitter } from 'node:events';
import type { Got } from 'got';
import type { CompiledSpec } from './compile/spec.js';
import { SignalError } from './errors.js';
import { loadSpecs } from './load/specs.js';
import { BUNDLED_SPECS_DIR } from './paths.js';
import { createHttpClient } from './run/http.js';
import { Integration } from './run/integration.js';
import type { Outcome, OutcomeDetail } from './run/outcome.js';
import { TokenCache } from './run/token-cache.js';
import { concealWhenPrinted, REDACTED } from './policy/redact.js';
import { checkRecord } from './validate/record.js';

export interface EngineOptions {
  /** Spec files or folders; default: the specs bundled with the package. */
  specs?: string | string[];
  /** Send every request to this base URL (e.g. a local emulator), keeping path and query. */
  endpoint?: string;
  /** Called with every outcome (also emitted as the `outcome` event). */
  onOutcome?: (outcome: Outcome, detail: OutcomeDetail) => void;
  /** Per-request timeouts, overriding the specs'. */
  timeouts?: { connect_ms?: number; response_ms?: number };
  /** Sockets per host in the keep-alive pool. */
  maxSockets?: number;
  /** How long a permanent token failure (bad credentials) is answered without asking again. */
  tokenFailureTtlMs?: number;
}

export interface CreateIntegrationOptions {
  endpoint?: string;
}

export function validateEndpoint(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new SignalError('options.endpoint', `endpoint '${endpoint}' is not a URL (expected e.g. http://127.0.0.1:9090)`);
  }
  if (!['http:', 'https:'].includes(u.protocol) || u.search || u.hash || u.username) {
    throw new SignalError('options.endpoint', `endpoint '${endpoint}' must be an http(s) base URL without query, fragment or credentials`);
  }
  return endpoint;
}

export class Engine extends EventEmitter<{ outcome: [Outcome, OutcomeDetail] }> {
  readonly specs: ReadonlyMap<string, CompiledSpec>;
  readonly tokens: TokenCache<Record<string, unknown>>;
  private readonly client: Got;
  private readonly closeClient: () => void;
  private readonly options: EngineOptions;
  /** Every integration created, so a shutdown can send what batching ones still hold. */
  private readonly integrations = new Set<Integration>();

  private constructor(specs: Map<string, CompiledSpec>, options: EngineOptions) {
    super();
    this.specs = specs;
    this.options = options;
    if (options.endpoint) validateEndpoint(options.endpoint);
    this.tokens = new TokenCache({ ...(options.tokenFailureTtlMs !== undefined ? { failure_ttl_ms: options.tokenFailureTtlMs } : {}) });
    const { client, close } = createHttpClient(options.maxSockets ? { maxSockets: options.maxSockets } : {});
    this.client = client;
    this.closeClient = close;
  }

  /** Load and compile every spec (throws SpecError listing every problem), then get ready to deliver. */
  static async load(options: EngineOptions = {}): Promise<Engine> {
    const paths = options.specs === undefined ? [BUNDLED_SPECS_DIR] : Array.isArray(options.specs) ? options.specs : [options.specs];
    return new Engine(await loadSpecs(paths), options);
  }

  /** Check a record against its spec (throws RecordError listing every bad field) and make it deliverable. */
  createIntegration(record: unknown, opts: CreateIntegrationOptions = {}): Integration {
    const checked = checkRecord(record, this.specs);
    const endpoint = opts.endpoint ?? this.options.endpoint;
    if (endpoint) validateEndpoint(endpoint);
    const integration = new Integration(checked, {
      client: this.client,
      tokens: this.tokens,
      ...(endpoint ? { endpoint } : {}),
      ...(this.options.timeouts ? { timeouts: this.options.timeouts } : {}),
      onOutcome: (outcome, detail) => {
        this.options.onOutcome?.(outcome, detail);
        this.emit('outcome', outcome, detail);
      },
    });
    if (checked.spec.send.batch) this.integrations.add(integration);
    return integration;
  }

  /** Send every partial batch now and wait for all batches in flight (end of input). */
  async flush(): Promise<void> {
    await Promise.all([...this.integrations].map((i) => i.flush()));
  }

  /** Graceful stop: flush what batching integrations hold, then release the sockets. */
  async shutdown(): Promise<void> {
    await this.flush();
    this.close();
  }

  /** Release sockets. Deliveries in flight fail with a network error. */
  close(): void {
    this.closeClient();
  }
}

// console.log(engine) must not print integrations' secrets or cached tokens.
concealWhenPrinted(Engine, (e) => ({ specs: [...e.specs.keys()] }));
concealWhenPrinted(TokenCache, () => ({ tokens: REDACTED }));
