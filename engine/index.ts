/**
 * Public API of signal-integrations: the engine (`Engine`, `Integration`), its input and outcome types,
 * the error hierarchy and reason codes, spec checking, the shared store and the fleet. What a version
 * promises about it is in docs/api.md.
 *
 * @packageDocumentation
 */
export { Engine, type EngineOptions, type CreateIntegrationOptions, type SpecSources } from './engine.js';
export { Integration, type PreviewRequest, type Preview, type DeliverOptions, applyEndpoint } from './run/integration.js';
export type { Outcome, OutcomeStatus, OutcomeDetail, DeliveredOutcome, SkippedOutcome, FailedOutcome, AttemptDetail } from './run/outcome.js';
export { parseEvent, type SignalEvent } from './run/event.js';
export type { IntegrationRecord } from './validate/record.js';
export type { CompiledSpec } from './compile/spec.js';
export type * from './spec/types.js';
export { checkSpecs, checkSpecFile, checkSpecText, loadSpecs, type LoadResult, type SpecText, type CheckOptions } from './load/specs.js';
export { functionSet, FunctionSet, type FunctionDefinition, type FunctionDefinitions } from './compile/builtins.js';
export { SignalError, SpecError, RecordError, DeliveryError, REASONS, formatDiagnostic, formatProblem, type Diagnostic, type InputProblem, type Reason } from './errors.js';
export { BUNDLED_SPECS_DIR, packagePath } from './paths.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './policy/retry-delay.js';
export { parseEventLine, parseJsonSafely, isBlankLine, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_DEPTH, type EventLineOptions, type EventLineResult } from './run/event-line.js';
export type { Store, TokenStore, RateLimitStore, Limiter, CachedToken, TokenFetch } from './store/types.js';
export { createMemoryStore } from './store/memory.js';
export { createRedisStore, type RedisStore, type RedisStoreOptions } from './store/redis.js';
export { startWorker, queuePolicyOf, mayHaveReachedVendor, fleetIdOf, recordMismatch, type StartWorkerOptions, type FleetWorker, type FleetOutcome, type FleetAttemptInfo, type Disposition, type WorkerLogger } from './fleet/worker.js';
export { createRedisQueue, RedisQueue, displayRedisUrl, DEFAULT_KEY_PREFIX, DEFAULT_COMMAND_TIMEOUT_MS, keyPrefixProblem, type RedisQueueOptions } from './fleet/redis-queue.js';
export type { DeliveryQueue, Lease, QueuedEvent, QueueRecord, AttemptSummary, Settlement, QueueStatus, ReplayResult } from './fleet/queue.js';
export { credentialScopeFingerprint } from './policy/credential-scope.js';
export { createRecordRegistry, recordVersion, type RecordRegistry, type RecordRegistryOptions, type RegistryEntry } from './fleet/registry.js';
export { DEFAULT_CIRCUIT_POLICY, type CircuitPolicy } from './policy/circuit.js';
export { createTraceStore, TraceStore, traceEventKey, DEFAULT_TRACE_TTL_S, DEFAULT_TRACE_MAX_EVENTS, type StoredTrace, type FleetTracer, type TraceStoreOptions } from './fleet/trace.js';
export { TRACE_BODY_MAX, type EventTrace, type TraceAttempt, type TraceRequest, type TraceSink } from './run/trace.js';
export { createFleetMetrics, type FleetMetrics, type FleetMetricsOptions } from './fleet/metrics.js';
export { DEFAULT_QUEUE_RETRY_POLICY, decideAfterAttempt, queueBackoff, type QueueRetryPolicy, type QueueDecision } from './policy/queue-retry.js';
