/** Public API of signal-integrations. */
export { Engine, type EngineOptions, type CreateIntegrationOptions } from './engine.js';
export { Integration, type PreviewRequest, type DeliverOptions, applyEndpoint } from './run/integration.js';
export type { Outcome, OutcomeStatus, OutcomeDetail } from './run/outcome.js';
export type { SignalEvent } from './run/event.js';
export type { IntegrationRecord } from './validate/record.js';
export type { CompiledSpec } from './compile/spec.js';
export type * from './spec/types.js';
export { checkSpecs, checkSpecFile, checkSpecText, loadSpecs } from './load/specs.js';
export { SignalError, SpecError, RecordError, DeliveryError, REASONS, formatDiagnostic, type Diagnostic } from './errors.js';
export { BUNDLED_SPECS_DIR, packagePath } from './paths.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './policy/retry-delay.js';
export { parseEventLine, parseJsonSafely, isBlankLine, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_DEPTH, type EventLineOptions, type EventLineResult } from './run/event-line.js';
export { startWorker, queuePolicyOf, mayHaveReachedVendor, type StartWorkerOptions, type FleetWorker, type FleetOutcome, type Disposition, type WorkerLogger } from './fleet/worker.js';
export { createRedisQueue, RedisQueue, displayRedisUrl, type RedisQueueOptions } from './fleet/redis-queue.js';
export type { DeliveryQueue, Lease, QueuedEvent, AttemptSummary, Settlement, QueueStatus } from './fleet/queue.js';
export { createFleetMetrics, type FleetMetrics, type FleetMetricsOptions } from './fleet/metrics.js';
export { DEFAULT_QUEUE_RETRY_POLICY, decideAfterAttempt, queueBackoff, type QueueRetryPolicy, type QueueDecision } from './policy/queue-retry.js';
