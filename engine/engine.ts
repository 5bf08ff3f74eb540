/**
 * The library the Signal runtime boots with: load every spec once, create integrations from records,
 * deliver events concurrently, and observe outcomes through a hook or the `outcome` event.
 */
import { EventEmitter } from 'node:events';
import type { Got } from 'got';
import { functionSet, type FunctionDefinitions, type FunctionSet } from './compile/builtins.js';
import type { CompiledSpec } from './compile/spec.js';
import { RecordError, SignalError } from './errors.js';
import { loadSpecs, type SpecText } from './load/specs.js';
import { BUNDLED_SPECS_DIR } from './paths.js';
import { createHttpClient } from './run/http.js';
import { Integration } from './run/integration.js';
import { DeliveryLifecycle } from './run/lifecycle.js';
import type { Outcome, OutcomeDetail } from './run/outcome.js';
import type { RetryPolicy } from './policy/retry-delay.js';
import { concealWhenPrinted } from './policy/redact.js';
import { createMemoryStore } from './store/memory.js';
import { rateLimitScope, requestsPerMinute } from './store/scope.js';
import type { Store, TokenStore } from './store/types.js';
import { checkRecord, type IntegrationRecord } from './validate/record.js';

export interface EngineOptions {
  /** Spec files or folders; default: the specs bundled with the package (unless `specTexts` is given). */
  specs?: string | string[];
  /** Specs given as text (e.g. read from a config store); `file` names each in errors and resolves `extends`. */
  specTexts?: SpecText[];
  /** Send every request to this base URL (e.g. a local emulator), keeping path and query. */
  endpoint?: string;
  /** Called with every outcome (also emitted as the `outcome` event). */
  onOutcome?: (outcome: Outcome, detail: OutcomeDetail) => void;
  /** Per-request timeouts, overriding the specs'. */
  timeouts?: { connect_ms?: number; response_ms?: number };
  /** Sockets per host in the keep-alive pool. */
  maxSockets?: number;
  /** How long a permanent token failure (bad credentials) is answered without asking again (memory store). */
  tokenFailureTtlMs?: number;
  /** How long `shutdown()` lets in-flight deliveries finish before it aborts them (default 10000). */
  shutdownTimeoutMs?: number;
  /** Retry policy over DEFAULT_RETRY_POLICY for every integration (a record's `retry` still wins), e.g. short backoffs in tests. */
  retry?: Partial<RetryPolicy>;
  /**
   * Where tokens and rate limits are kept: default in this process; `createRedisStore({ url })` shares them
   * across a fleet of processes. The caller closes a store it passes.
   */
  store?: Store;
  /**
   * Functions expressions may call beyond JSONata's and the engine's built-ins, by name without the `$`:
   * `{ tier: { implementation: (points) => ..., arity: 1 } }`. Pure and synchronous; used on the compiled
   * path and by the interpreter alike, and `validate` checks every call's argument count against `arity`.
   * A name that is already a built-in, or a bad declaration, throws an `options.functions` SignalError.
   */
  functions?: FunctionDefinitions;
}

export interface CreateIntegrationOptions {
  endpoint?: string;
}

const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;

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

/** Where specs come from: folders/files, and/or texts. */
export type SpecSources = Pick<EngineOptions, 'specs' | 'specTexts'>;

async function loadFrom(sources: SpecSources, functions: FunctionSet): Promise<Map<string, CompiledSpec>> {
  const texts = sources.specTexts ?? [];
  const paths =
    sources.specs === undefined ? (texts.length ? [] : [BUNDLED_SPECS_DIR]) : Array.isArray(sources.specs) ? sources.specs : [sources.specs];
  return loadSpecs(paths, texts, { functions });
}

export class Engine extends EventEmitter<{ outcome: [Outcome, OutcomeDetail] }> {
  private currentSpecs: Map<string, CompiledSpec>;
  readonly tokens: TokenStore<Record<string, unknown>>;
  readonly store: Store;
  private readonly client: Got;
  private readonly closeClient: () => void;
  private readonly options: EngineOptions;
  /** Every integration created, so a shutdown can send what batching ones still hold. */
  private readonly integrations = new Set<Integration>();
  /** Deliveries in flight across every integration, and the signal that aborts them. */
  private readonly lifecycle = new DeliveryLifecycle();
  private stopping: Promise<void> | undefined;
  private readonly functions: FunctionSet;

  private constructor(specs: Map<string, CompiledSpec>, options: EngineOptions, functions: FunctionSet) {
    super();
    this.currentSpecs = specs;
    this.options = options;
    this.functions = functions;
    if (options.endpoint) validateEndpoint(options.endpoint);
    this.store = options.store ?? createMemoryStore(options.tokenFailureTtlMs !== undefined ? { failure_ttl_ms: options.tokenFailureTtlMs } : {});
    this.tokens = this.store.tokens;
    const { client, close } = createHttpClient(options.maxSockets ? { maxSockets: options.maxSockets } : {});
    this.client = client;
    this.closeClient = close;
  }

  /** Load and compile every spec (throws SpecError listing every problem), then get ready to deliver. */
  static async load(options: EngineOptions = {}): Promise<Engine> {
    const functions = functionSet(options.functions);
    return new Engine(await loadFrom(options, functions), options, functions);
  }

  /** The compiled specs by vendor (replaced as a whole by `reload`). */
  get specs(): ReadonlyMap<string, CompiledSpec> {
    return this.currentSpecs;
  }

  /**
   * Load the specs again (from the same sources, or the ones given) and use them for integrations created
   * from now on. All or nothing: a SpecError leaves the current specs in place. Cached tokens and the
   * socket pool are kept; integrations already created keep the spec they were created with.
   */
  async reload(sources: SpecSources = this.options): Promise<void> {
    this.currentSpecs = await loadFrom(sources, this.functions);
  }

  /** An integration leaves the engine (its record was deleted or replaced): send what it holds, forget it. */
  async dispose(integration: Integration): Promise<void> {
    await integration.flush();
    this.integrations.delete(integration);
  }

  /**
   * Check untyped input (e.g. parsed JSON from the Management API) as `createIntegration` would: against
   * the record schema and its vendor's spec (config schema, preset, field mappings). Returns the typed
   * record (the spec's config defaults filled in; the input is not changed), or a RecordError whose
   * `issues` list every problem with its path, keyword and message — never a value.
   */
  parseRecord(input: unknown): IntegrationRecord | RecordError {
    try {
      return checkRecord(input, this.specs).record;
    } catch (e) {
      if (e instanceof RecordError) return e;
      throw e;
    }
  }

  /**
   * Make a record deliverable. Typed with the record shape; input of unknown shape goes through
   * `parseRecord` first. The record is checked against its spec here too (JavaScript callers, records
   * built in code): a bad one throws a RecordError listing every bad field.
   */
  createIntegration(record: IntegrationRecord, opts: CreateIntegrationOptions = {}): Integration {
    const checked = checkRecord(record, this.specs);
    const endpoint = opts.endpoint ?? this.options.endpoint;
    if (endpoint) validateEndpoint(endpoint);
    const rpm = requestsPerMinute(checked.spec, checked.record);
    const integration = new Integration(checked, {
      client: this.client,
      tokens: this.tokens,
      // In memory a record without a declared scope keeps a limiter of its own, as it always had; Redis needs a name for it.
      ...(rpm
        ? {
            limiter: this.store.rateLimits.limiter(
              checked.spec.rateLimit.scope.length || this.store.kind === 'redis' ? rateLimitScope(checked.spec, checked.record, endpoint) : undefined,
              rpm,
            ),
          }
        : {}),
      ...(endpoint ? { endpoint } : {}),
      ...(this.options.timeouts ? { timeouts: this.options.timeouts } : {}),
      ...(this.options.retry ? { retry: this.options.retry } : {}),
      lifecycle: this.lifecycle,
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

  /**
   * Graceful stop. New deliveries end at once as failed, reason `interrupted`; partial batches are sent
   * now; in-flight deliveries get `timeoutMs` (default `shutdownTimeoutMs`, 10 s) to finish, then are
   * aborted without retry (failed, `interrupted`, `possibly_duplicated` when the request had gone out).
   * Resolves once every outcome is final, then releases the sockets. Calling it again returns the same stop.
   */
  shutdown(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.stopping ??= this.stop(opts.timeoutMs ?? this.options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
    return this.stopping;
  }

  private async stop(timeoutMs: number): Promise<void> {
    this.lifecycle.stop();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs))));
    const drained = Promise.all([this.flush(), this.lifecycle.idle()]).then(() => true as const);
    const inTime = await Promise.race([drained, deadline]);
    clearTimeout(timer);
    if (!inTime) {
      this.lifecycle.abort();
      await Promise.all([this.flush(), this.lifecycle.idle()]);
    }
    this.closeClient();
  }

  /** Stop now: abort every delivery in flight (failed, `interrupted`, never retried) and release the sockets. */
  close(): void {
    this.lifecycle.abort();
    this.closeClient();
  }
}

// console.log(engine) must not print integrations' secrets or cached tokens.
concealWhenPrinted(Engine, (e) => ({ specs: [...e.specs.keys()] }));
